// The room page (/r/CODE): joins the room as a viewer, or as a controller
// when it holds the room's control token, and wires the views to one client.

import { RoomClient, RoomCommandError } from '../../src/client/room-client.ts';
import { localNow } from '../../src/client/clock-sync.ts';
import { byId, setText } from './dom.ts';
import { codeFromLocation, forgetControlToken, takeControlToken } from './room-link.ts';
import { TransportView } from './transport-view.ts';
import { StatusView } from './status-view.ts';
import { Controls } from './controls.ts';
import { AnalysePanel } from './analyse/analyse-panel.ts';
import { setupShare } from './share.ts';

interface Session {
  client: RoomClient;
  transport: TransportView;
  status: StatusView;
}

function storage(): Storage | null {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}

let session: Session | null = null;
let analyse: AnalysePanel | null = null;

function join(code: string, token: string | null, notice: string | null = null): void {
  session?.transport.stop();
  session?.client.close();
  const client = new RoomClient({ url: location.origin, code, token: token ?? undefined });
  const transport = new TransportView(client);
  const status = new StatusView(client);
  new Controls(client);
  session = { client, transport, status };
  transport.start();
  if (notice) status.notice(notice);
  client.connect().catch((e: unknown) => {
    if (token && e instanceof RoomCommandError && e.code === 'unauthorized') {
      // A stale or mistyped control link: watch instead of showing nothing.
      forgetControlToken(code, storage());
      join(code, null, 'The control link was not accepted (wrong or from another room). You are watching as a viewer.');
    }
    // not_found and expired are shown by the status view from the client's state.
  });
}

/**
 * A read-only handle for tests and curious people in the console: the
 * position this page shows at a given local instant, and what it drew last.
 * It offers no commands.
 */
function exposeDebugHandle(): void {
  const handle = {
    position: (local?: number) => session?.client.position(local ?? localNow()) ?? null,
    serverNow: (local?: number) => session?.client.serverNow(local ?? localNow()) ?? null,
    localNow,
    get state() {
      return session?.client.state ?? 'idle';
    },
    get role() {
      return session?.client.role ?? 'viewer';
    },
    get anchor() {
      return session?.client.anchor ? { ...session.client.anchor } : null;
    },
    get sync() {
      const s = session?.client.sync;
      return s ? { offsetMs: s.offsetMs, uncertaintyMs: s.uncertaintyMs, samples: s.sampleCount } : null;
    },
    get drawn() {
      return session?.transport.drawn ? { ...session.transport.drawn } : null;
    },
    get analysis() {
      return analyse ? { ...analyse.stats } : null;
    },
  };
  Object.defineProperty(window, 'roomtone', { value: Object.freeze(handle), writable: false, configurable: false });
}

function main(): void {
  exposeDebugHandle();
  const code = codeFromLocation(location);
  if (!code) {
    const banner = byId('banner');
    banner.hidden = false;
    banner.dataset.level = 'bad';
    setText(byId('banner-text'), 'This address has no valid room code. Room codes have six letters and digits.');
    byId('banner-home').hidden = false;
    setText(byId('conn'), 'No room');
    return;
  }
  document.title = `Room ${code} · roomtone`;
  setText(byId('room-code'), code);
  setupShare(code);
  join(code, takeControlToken(code, location, history, storage()));
  analyse = new AnalysePanel(() => session!.client);
}

main();
