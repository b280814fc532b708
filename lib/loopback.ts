/** Loopback names and addresses: what a listener bound to this machine alone may be reached as. No dependencies. */

/** True for an address or host name that only this machine reaches: `localhost`, `127.0.0.0/8`, `::1`. */
export function isLoopbackName(name: string): boolean {
  const host = name.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  return (
    host === 'localhost' ||
    host.endsWith('.localhost') ||
    host === '::1' ||
    host === '::ffff:127.0.0.1' ||
    /^127(\.\d{1,3}){3}$/.test(host)
  );
}

/**
 * True when an HTTP `Host` header names this machine (port ignored). A server bound to loopback checks it so that a
 * web page cannot reach it through DNS rebinding (a name of the attacker's that resolves to 127.0.0.1): the browser
 * still sends the attacker's name as the Host. An absent Host (HTTP/1.0 tools) is not a browser and is allowed.
 */
export function isLoopbackHostHeader(header: string | undefined): boolean {
  if (header === undefined || header === '') return true;
  const host = header.startsWith('[') ? header.slice(0, header.indexOf(']') + 1) : header.replace(/:\d+$/, '');
  return isLoopbackName(host);
}
