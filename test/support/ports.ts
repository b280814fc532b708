import fs from 'node:fs/promises';
import path from 'node:path';

/**
 * Whether process `pid` holds a socket listening on TCP `port` (any address), from /proc; undefined where there is
 * no /proc/net/tcp (not Linux).
 */
export async function listensOn(pid: number, port: number): Promise<boolean | undefined> {
  const tables = await Promise.all(
    ['/proc/net/tcp', '/proc/net/tcp6'].map((file) => fs.readFile(file, 'utf8').catch(() => undefined)),
  );
  if (tables.every((table) => table === undefined)) return undefined;
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set<string>();
  for (const line of tables.flatMap((table) => table?.split('\n').slice(1) ?? [])) {
    const [, local, , state, , , , , , inode] = line.trim().split(/\s+/);
    // State 0A is LISTEN.
    if (local?.endsWith(`:${hexPort}`) && state === '0A' && inode) inodes.add(inode);
  }
  const fdDir = `/proc/${pid}/fd`;
  const fds = await fs.readdir(fdDir).catch(() => []);
  const links = await Promise.all(fds.map((fd) => fs.readlink(path.join(fdDir, fd)).catch(() => '')));
  return links.some((link) => inodes.has(/^socket:\[(\d+)\]$/.exec(link)?.[1] ?? ''));
}
