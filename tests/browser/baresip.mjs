// Real softphones for the browser walk: baresip (Debian's package), headless, one account each,
// configured as tests/clients/mod.rs `baresip_phone()` does. Its microphone is a sine tone
// (ausine, 48 kHz stereo: the only format it produces; baresip resamples to G.711) and its
// speaker is a null bridge, so no sound card is touched. Every phone quits by itself after
// `quitAfter` seconds (hanging up its call), and `stopAll()` kills any still running.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

const MODULE_DIRS = [
  '/usr/lib/baresip/modules',
  '/usr/lib/x86_64-linux-gnu/baresip/modules',
  '/usr/lib/aarch64-linux-gnu/baresip/modules',
  '/usr/local/lib/baresip/modules',
];

/** Throws a clear error unless baresip and the modules the phones load are installed. */
export function requireBaresip() {
  const onPath = (process.env.PATH ?? '').split(delimiter).some((d) => d && existsSync(join(d, 'baresip')));
  const modules = MODULE_DIRS.find((d) => existsSync(join(d, 'account.so')));
  if (!onPath || !modules) {
    throw new Error('baresip not found (the walk calls between two baresip phones): apt-get install baresip (.ci/run does)');
  }
  for (const m of ['g711.so', 'ausine.so', 'aubridge.so', 'menu.so']) {
    if (!existsSync(join(modules, m))) throw new Error(`baresip module ${m} missing in ${modules}`);
  }
  return modules;
}

const running = new Set();
const started = [];

/**
 * Starts one phone: `user@domain` with `password`, from `ip` (a loopback address of its own),
 * registering at `registrar` ("IP:PORT", UDP). `autoAnswer` answers incoming calls at once;
 * `dial` dials that number (`sip:NUMBER@DOMAIN`) at start-up.
 */
export function startPhone({ name, ip, user, domain, password, registrar, tone = 440, autoAnswer = false, dial, quitAfter }) {
  const modules = requireBaresip();
  const dir = mkdtempSync(join(tmpdir(), `sb-baresip-${name}-`));
  const config = [
    'poll_method\tepoll',
    `sip_listen\t${ip}:0`,
    `net_interface\t${ip}`,
    'sip_trans_def\tudp',
    'audio_player\taubridge,nil',
    `audio_source\tausine,${tone}`,
    'audio_alert\taubridge,nil',
    'ausrc_srate\t48000',
    'auplay_srate\t48000',
    'ausrc_channels\t2',
    `module_path\t${modules}`,
    ...['g711.so', 'ausine.so', 'aubridge.so'].map((m) => `module\t\t${m}`),
    'module_app\taccount.so',
    'module_app\tmenu.so',
    '',
  ].join('\n');
  writeFileSync(join(dir, 'config'), config);
  writeFileSync(
    join(dir, 'accounts'),
    `<sip:${user}@${domain};transport=udp>;auth_pass=${password};` +
      `outbound="sip:${registrar};transport=udp";regint=600${autoAnswer ? ';answermode=auto' : ''}\n`,
  );
  const args = ['-f', dir, '-t', String(quitAfter)];
  if (dial) args.push('-e', `/dial sip:${dial}@${domain}`);
  const child = spawn('baresip', args, { env: { ...process.env, HOME: dir }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const waiters = new Set();
  const onData = (d) => {
    log += d;
    for (const w of waiters) w();
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise((resolve) => {
    child.on('error', (e) => { log += `\nspawn error: ${e.message}\n`; resolve({ code: null, signal: null }); });
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  const phone = {
    name,
    child,
    exited,
    done: false,
    log: () => log,
    /** Resolves when the log matches `re`; rejects (with the log) after `ms`. */
    waitFor(re, ms, what = String(re)) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = log.match(re);
          if (!m) return false;
          cleanup();
          resolve(m);
          return true;
        };
        const timer = setTimeout(() => { cleanup(); reject(new Error(`${name}: no ${what} within ${ms} ms; its log:\n${log}`)); }, ms);
        const cleanup = () => { clearTimeout(timer); waiters.delete(check); };
        if (check()) return;
        waiters.add(check);
        exited.then(() => setTimeout(() => { if (waiters.has(check) && !check()) { cleanup(); reject(new Error(`${name} exited before ${what}; its log:\n${log}`)); } }, 50));
      });
    },
    /** Waits for the `-t` quit; rejects after `ms`. */
    async waitExit(ms) {
      let timer;
      const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${name} did not quit within ${ms} ms; its log:\n${log}`)), ms);
      });
      try {
        return await Promise.race([exited, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
  running.add(phone);
  started.push(phone);
  exited.then(() => running.delete(phone));
  return phone;
}

/** baresip's line for a successful registration, e.g. `201@acme.pbx.test: {0/UDP/v4} 200 OK () [1 binding]`. */
export const REGISTERED = / 200 OK .*binding/;

/** Every phone started so far, with its log: for the artifacts. */
export const phoneLogs = () => started.map((p) => ({ name: p.name, log: p.log() }));

const within = (ms, promise) => Promise.race([promise, new Promise((resolve) => setTimeout(resolve, ms))]);

/** Stops every phone still running (SIGTERM: it hangs up and unregisters; SIGKILL after 2 s),
 * then removes their config directories. */
export async function stopAll() {
  const phones = [...running];
  for (const p of phones) p.child.kill('SIGTERM');
  await within(2000, Promise.all(phones.map((p) => p.exited)));
  for (const p of running) p.child.kill('SIGKILL');
  await within(1000, Promise.all(phones.map((p) => p.exited)));
  for (const p of started) p.cleanup();
}

// Never leave a phone behind, even when the walk dies on an uncaught error.
process.on('exit', () => {
  for (const p of running) p.child.kill('SIGKILL');
});
