import { render } from 'preact';
import '../ui/styles.css';
import { Options } from './Options.tsx';

const root = document.getElementById('app');
if (!root) throw new Error('options: #app is missing from index.html');
render(<Options />, root);
