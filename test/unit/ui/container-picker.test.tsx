/** @jsxRuntime automatic @jsxImportSource preact */
import './setup.ts';
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { cleanup, fireEvent, render, screen } from '@testing-library/preact';
import {
  type ContainerIdentity,
  ContainerPicker,
  type ContainerSource,
} from '../../../extension/ui/ContainerPicker.tsx';

afterEach(cleanup);

function source(containers: readonly ContainerIdentity[]): ContainerSource {
  return { query: async () => containers };
}

const WORK: ContainerIdentity = { cookieStoreId: 'firefox-container-1', name: 'Work', colorCode: '#37adff' };
const SHOPPING: ContainerIdentity = { cookieStoreId: 'firefox-container-2', name: 'Shopping' };

describe('ContainerPicker', () => {
  it('renders nothing without containers (Chrome)', () => {
    const { container } = render(
      <ContainerPicker value={[]} onChange={() => undefined} usersConfigured={false} source={undefined} />,
    );
    assert.equal(container.innerHTML, '');
  });

  it('lists no container, each container and private windows, and ticks the rule ones', async () => {
    const changes: string[][] = [];
    render(
      <ContainerPicker
        value={['firefox-container-2']}
        onChange={(next) => changes.push(next)}
        usersConfigured={false}
        source={source([WORK, SHOPPING])}
      />,
    );
    const work = await screen.findByLabelText<HTMLInputElement>('Work');
    assert.equal(work.checked, false);
    assert.equal(screen.getByLabelText<HTMLInputElement>('Shopping').checked, true);
    assert.ok(screen.getByLabelText('No container'));
    fireEvent.click(work);
    fireEvent.click(screen.getByLabelText('Private windows'));
    fireEvent.click(screen.getByLabelText('Shopping'));
    assert.deepEqual(changes, [
      ['firefox-container-2', 'firefox-container-1'],
      ['firefox-container-2', 'private'],
      [],
    ]);
  });

  it('keeps a removed container visible so it can be unticked', async () => {
    render(
      <ContainerPicker
        value={['firefox-container-9']}
        onChange={() => undefined}
        usersConfigured={false}
        source={source([WORK])}
      />,
    );
    const gone = await screen.findByLabelText<HTMLInputElement>('Removed container (firefox-container-9)');
    assert.equal(gone.checked, true);
  });

  it('says when the host has inbound users, which cannot carry the route', async () => {
    render(
      <ContainerPicker value={['private']} onChange={() => undefined} usersConfigured source={source([])} />,
    );
    assert.match((await screen.findByRole('note')).textContent ?? '', /inbound users/);
  });

  it('says when containers are turned off', async () => {
    const off: ContainerSource = {
      query: () => Promise.reject(new Error('Contextual identities are currently disabled')),
    };
    render(<ContainerPicker value={[]} onChange={() => undefined} usersConfigured={false} source={off} />);
    assert.match((await screen.findByRole('status')).textContent ?? '', /currently disabled/);
  });
});
