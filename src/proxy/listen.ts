import type { Server } from 'node:http';
import { Duplex } from 'node:stream';
import type { Server as NetServer, Socket, AddressInfo } from 'node:net';

/** Listens and resolves with the bound port (useful with port 0). */
export function listenOn(server: Server | NetServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** A Duplex over `socket` that first yields `first` (bytes already read while sniffing). */
export function replayingStream(socket: Socket, first: Buffer): Duplex {
  const wrapper = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      socket.write(chunk, cb);
    },
    final(cb) {
      socket.end();
      cb();
    },
    destroy(err, cb) {
      socket.destroy(err ?? undefined);
      cb(err);
    },
  });
  wrapper.push(first);
  socket.on('data', (d: Buffer) => {
    if (!wrapper.push(d)) socket.pause();
  });
  socket.once('end', () => wrapper.push(null));
  socket.once('close', () => wrapper.destroy());
  socket.on('error', (err) => wrapper.destroy(err));
  Object.defineProperty(wrapper, 'remoteAddress', { get: () => socket.remoteAddress });
  return wrapper;
}
