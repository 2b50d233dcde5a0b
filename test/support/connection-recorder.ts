/** A loopback TCP listener that only counts connections: proof that nothing was called. */
import { createServer, type Server } from "node:net";

export interface ConnectionRecorder {
  readonly url: string;
  readonly port: number;
  connections(): number;
  close(): Promise<void>;
}

export async function startConnectionRecorder(): Promise<ConnectionRecorder> {
  let count = 0;
  const server: Server = createServer((socket) => {
    count++;
    socket.destroy();
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const address = server.address();
  if (!address || typeof address === "string") throw new Error("no port");
  return {
    url: `http://127.0.0.1:${address.port}`,
    port: address.port,
    connections: () => count,
    close: () => new Promise((done) => server.close(() => done())),
  };
}
