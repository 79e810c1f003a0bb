// An HTTP server on 127.0.0.1 for the test fakes (EC2 API, IMDS) whose close()
// also ends requests a fault left hanging, so no test waits on them.

import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export class LoopbackHttp {
  private readonly server: http.Server;
  private readonly sockets = new Set<Socket>();

  constructor(handler: (req: http.IncomingMessage, res: http.ServerResponse) => void) {
    this.server = http.createServer(handler);
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  /** Listens on an ephemeral port. */
  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => resolve());
    });
  }

  /** "http://127.0.0.1:PORT", no trailing slash. */
  get origin(): string {
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }
}
