/** Sends one text to every socket; returns how many took it. Closing sockets are skipped, their close handlers clean up. */
export function sendToAll(sockets: Iterable<WebSocket>, text: string): number {
  let n = 0;
  for (const ws of sockets) {
    try {
      ws.send(text);
      n++;
    } catch {
      // closing
    }
  }
  return n;
}
