// A minimal SIP phone for the browser walk: one digest-authenticated REGISTER over UDP on
// loopback (RFC 3261 §10, RFC 7616 with MD5 and qop=auth), so the registrations page has a
// real binding to show.

import { createSocket } from 'node:dgram';
import { createHash, randomBytes } from 'node:crypto';

const md5 = (s) => createHash('md5').update(s).digest('hex');
const token = () => randomBytes(8).toString('hex');

function parseResponse(text) {
  const [head] = text.split('\r\n\r\n');
  const [status, ...lines] = head.split('\r\n');
  const code = Number(status.split(' ')[1]);
  const headers = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { code, headers };
}

function challenge(value) {
  const params = {};
  for (const m of value.replace(/^Digest\s+/i, '').matchAll(/(\w+)=("([^"]*)"|[^,\s]+)/g)) {
    params[m[1].toLowerCase()] = m[3] ?? m[2];
  }
  return params;
}

/** Registers `user@domain` with `password` at `server` ("127.0.0.1:5060"); resolves with the
 * final status code. */
export async function register({ server, user, domain, password, userAgent, expires = 300 }) {
  const [host, port] = server.split(':');
  const sock = createSocket('udp4');
  await new Promise((resolve) => sock.bind(0, '127.0.0.1', resolve));
  const local = sock.address();
  const callId = `${token()}@127.0.0.1`;
  const fromTag = token();
  const uri = `sip:${domain}`;
  const send = (cseq, auth) => {
    const msg = [
      `REGISTER ${uri} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${local.port};branch=z9hG4bK${token()};rport`,
      'Max-Forwards: 70',
      `From: <sip:${user}@${domain}>;tag=${fromTag}`,
      `To: <sip:${user}@${domain}>`,
      `Call-ID: ${callId}`,
      `CSeq: ${cseq} REGISTER`,
      `Contact: <sip:${user}@127.0.0.1:${local.port}>`,
      `Expires: ${expires}`,
      `User-Agent: ${userAgent}`,
      ...(auth ? [`Authorization: ${auth}`] : []),
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
    sock.send(msg, Number(port), host);
  };
  const next = () =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no SIP response within 5 s')), 5000);
      const onMessage = (buf) => {
        const r = parseResponse(buf.toString());
        if (r.code < 200) return; // provisional: keep waiting
        clearTimeout(timer);
        sock.off('message', onMessage);
        resolve(r);
      };
      sock.on('message', onMessage);
    });
  try {
    send(1);
    let r = await next();
    if (r.code === 401) {
      const c = challenge(r.headers['www-authenticate'] ?? '');
      const cnonce = token();
      const nc = '00000001';
      const ha1 = md5(`${user}:${c.realm}:${password}`);
      const ha2 = md5(`REGISTER:${uri}`);
      const response = md5(`${ha1}:${c.nonce}:${nc}:${cnonce}:auth:${ha2}`);
      const auth =
        `Digest username="${user}", realm="${c.realm}", nonce="${c.nonce}", uri="${uri}", ` +
        `response="${response}", algorithm=MD5, qop=auth, nc=${nc}, cnonce="${cnonce}"` +
        (c.opaque ? `, opaque="${c.opaque}"` : '');
      send(2, auth);
      r = await next();
    }
    return r.code;
  } finally {
    sock.close();
  }
}
