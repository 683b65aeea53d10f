import { render } from 'preact';
import '../ui/styles.css';
import { Popup } from './Popup.tsx';

const root = document.getElementById('app');
if (!root) throw new Error('popup: #app is missing from index.html');
render(<Popup />, root);
