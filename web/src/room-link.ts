// Where a room page gets its code and, for controllers, its control token.
//
// The control link is /r/CODE#control=TOKEN: a fragment never reaches the
// server, so the token stays out of request logs. The page moves it into
// localStorage and strips it from the address bar, so the URL on screen (and
// whatever gets copied from it) is a plain viewer link, while a reload keeps
// control.

import { normalizeRoomCode } from '../../src/protocol/room-code.ts';

const TOKEN_KEY = (code: string) => `roomtone:control:${code}`;

export function controlLink(pageUrl: string, token: string): string {
  return `${pageUrl}#control=${encodeURIComponent(token)}`;
}

export function viewerLink(origin: string, code: string): string {
  return `${origin}/r/${code}`;
}

/** The room code in /r/CODE (or ?code=CODE on /room.html), or null. */
export function codeFromLocation(loc: Location): string | null {
  const m = /^\/r\/([^/]+)\/?$/.exec(loc.pathname);
  const raw = m ? decodeURIComponent(m[1]) : new URLSearchParams(loc.search).get('code');
  return raw ? normalizeRoomCode(raw) : null;
}

/** Takes a token from the fragment (remembering it) or from an earlier visit. */
export function takeControlToken(code: string, loc: Location, history: History, storage: Storage | null): string | null {
  const fromHash = new URLSearchParams(loc.hash.replace(/^#/, '')).get('control');
  if (fromHash) {
    try {
      storage?.setItem(TOKEN_KEY(code), fromHash);
    } catch {
      // storage full or disabled: control lasts for this page only
    }
    history.replaceState(null, '', loc.pathname + loc.search);
    return fromHash;
  }
  try {
    return storage?.getItem(TOKEN_KEY(code)) ?? null;
  } catch {
    return null;
  }
}

/** A token the room refused (wrong or from an older room) is forgotten, so the page falls back to viewing. */
export function forgetControlToken(code: string, storage: Storage | null): void {
  try {
    storage?.removeItem(TOKEN_KEY(code));
  } catch {
    // nothing to forget
  }
}
