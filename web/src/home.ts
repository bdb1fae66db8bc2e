// The home page: join a room by its code, or create one and get the code,
// a viewer link to share and a controller link to keep.

import { normalizeRoomCode } from '../../src/protocol/room-code.ts';
import { ApiError, apiJson, postJson } from './api.ts';
import { byId, describeError, show } from './dom.ts';
import { controlLink } from './room-link.ts';

interface CreatedRoom {
  code: string;
  control_token: string;
  page_url: string;
}

function showError(el: HTMLElement, message: string | null): void {
  el.textContent = message ?? '';
  show(el, message !== null);
}

async function copyText(text: string, fallback: HTMLInputElement): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // Clipboard API refused (insecure origin, no permission): select it for a manual copy.
    fallback.value = text;
    fallback.focus();
    fallback.select();
    return false;
  }
}

function setupJoin(): void {
  const form = byId<HTMLFormElement>('join-form');
  const input = byId<HTMLInputElement>('join-code');
  const error = byId('join-error');
  const button = form.querySelector('button')!;
  input.addEventListener('input', () => {
    input.removeAttribute('aria-invalid');
    showError(error, null);
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const code = normalizeRoomCode(input.value);
    if (!code) {
      input.setAttribute('aria-invalid', 'true');
      showError(error, 'That is not a room code: it has six letters and digits (no 0, O, 1, I or L).');
      input.focus();
      return;
    }
    button.disabled = true;
    try {
      // Ask first, so a mistyped code is answered here rather than on an empty room page.
      await apiJson(`/api/v1/rooms/${code}`);
      location.assign(`/r/${code}`);
    } catch (err) {
      input.setAttribute('aria-invalid', 'true');
      const msg =
        err instanceof ApiError && err.code === 'not_found'
          ? `No room ${code}. Check the code; rooms expire after a day without activity.`
          : err instanceof ApiError && err.code === 'rate_limited'
            ? 'Too many wrong codes from here: wait a minute and try again.'
            : describeError(err);
      showError(error, msg);
      input.focus();
    } finally {
      button.disabled = false;
    }
  });
}

function setupCreate(): void {
  const form = byId<HTMLFormElement>('create-form');
  const error = byId('create-error');
  const created = byId('created');
  const codeEl = byId('created-code');
  const openControl = byId<HTMLAnchorElement>('open-control');
  const controlInput = byId<HTMLInputElement>('control-link');
  const copyStatus = byId('copy-status');
  const button = form.querySelector('button')!;
  let room: CreatedRoom | null = null;

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    showError(error, null);
    const bpm = Number(byId<HTMLInputElement>('create-bpm').value);
    const beats = Number(byId<HTMLInputElement>('create-meter').value);
    button.disabled = true;
    try {
      room = await postJson<CreatedRoom>('/api/v1/rooms', { bpm, beats_per_bar: beats });
      codeEl.textContent = room.code;
      const link = controlLink(room.page_url, room.control_token);
      openControl.href = link;
      controlInput.value = link;
      show(created, true);
      copyStatus.textContent = '';
      openControl.focus();
    } catch (err) {
      showError(error, describeError(err));
    } finally {
      button.disabled = false;
    }
  });

  byId('copy-link').addEventListener('click', async () => {
    if (!room) return;
    const ok = await copyText(room.page_url, controlInput);
    copyStatus.textContent = ok ? `Copied ${room.page_url}` : 'Copying was blocked: the link is selected above, copy it by hand.';
    if (ok) controlInput.value = controlLink(room.page_url, room.control_token);
  });
}

setupJoin();
setupCreate();
