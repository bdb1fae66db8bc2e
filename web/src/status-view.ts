// Connection, agent and sync status of a room page, and the banner that tells
// people when the room is gone or the connection dropped.

import type { ConnectionState, RoomClient } from '../../src/client/room-client.ts';
import { byId, setText, show } from './dom.ts';

const PILL: Record<ConnectionState, string> = {
  idle: 'Starting…',
  connecting: 'Connecting…',
  open: 'Live',
  reconnecting: 'Reconnecting…',
  closed: 'Disconnected',
  expired: 'Room expired',
  not_found: 'No such room',
};

export class StatusView {
  private readonly pill = byId('conn');
  private readonly banner = byId('banner');
  private readonly bannerText = byId('banner-text');
  private readonly bannerHome = byId('banner-home');
  private readonly agent = byId('agent');
  private readonly sync = byId('sync');
  private readonly client: RoomClient;
  private wasOpen = false;
  private expiredReason: string | null = null;
  private standing: string | null = null;

  constructor(client: RoomClient) {
    this.client = client;
    client.on('state', (s) => this.onState(s));
    client.on('agent', (a) => {
      setText(this.agent, a.connected ? 'Connected: it drives the clock' : 'None: the room keeps time');
      this.agent.className = a.connected ? 'ok' : '';
    });
    client.on('sync', ({ offsetMs, uncertaintyMs }) => {
      const sign = offsetMs > -0.05 ? '+' : '−';
      setText(this.sync, `${sign}${Math.abs(offsetMs).toFixed(1)} ms ± ${uncertaintyMs.toFixed(1)} ms`);
      this.sync.className = uncertaintyMs <= 5 ? 'ok' : uncertaintyMs <= 20 ? 'warn' : 'bad';
    });
    // The expired event (with its reason) comes just before the state change that would say less.
    client.on('expired', ({ reason }) => (this.expiredReason = reason));
    this.onState(client.state);
  }

  /** A message that stays while the connection is fine (e.g. why this page only views). */
  notice(text: string): void {
    this.standing = text;
    this.message(text);
  }

  /** Shows a message in the banner; null hides it. */
  message(text: string | null, level: 'warn' | 'bad' = 'warn', home = false): void {
    show(this.banner, text !== null);
    if (text === null) return;
    this.banner.dataset.level = level;
    setText(this.bannerText, text);
    show(this.bannerHome, home);
  }

  private onState(s: ConnectionState): void {
    this.pill.dataset.state = s;
    document.body.dataset.room = s;
    const role = this.client.role === 'controller' ? ' · controller' : '';
    setText(this.pill, s === 'open' ? PILL.open + role : PILL[s]);
    switch (s) {
      case 'open':
        this.wasOpen = true;
        this.message(this.standing);
        return;
      case 'reconnecting':
        this.message(
          this.wasOpen
            ? 'Connection lost. Reconnecting… The playhead keeps running on its last known line meanwhile.'
            : 'Cannot reach the room yet. Retrying…',
        );
        return;
      case 'not_found':
        this.message(`There is no room ${this.client.code}. It may have expired, or the code is mistyped.`, 'bad', true);
        return;
      case 'expired':
        this.message(`This room has expired${this.expiredReason ? ` (${this.expiredReason})` : ''}. Start a new one from the home page.`, 'bad', true);
        return;
      default:
        return;
    }
  }
}
