// "Invite others" on the room page: the code large enough to read across the
// room and the viewer link to copy. Never the control token.

import { byId, setText } from './dom.ts';
import { viewerLink } from './room-link.ts';

export function setupShare(code: string): void {
  const link = viewerLink(location.origin, code);
  const input = byId<HTMLInputElement>('share-link');
  const status = byId('share-status');
  setText(byId('share-code'), code);
  input.value = link;
  byId('share-copy').addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(link);
      setText(status, 'Copied.');
    } catch {
      // Clipboard refused (permission, insecure origin): select it for a manual copy.
      input.focus();
      input.select();
      setText(status, 'Copying was blocked: the link is selected, copy it by hand.');
    }
  });
}
