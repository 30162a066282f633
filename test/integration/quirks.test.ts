import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, TestBridge, USER, sha256 } from '../support/bridge.js';
import { RawFtp, listText, readAll, type FtpReply } from '../support/clients.js';

/**
 * Device quirks, each replayed as the exact command sequence the device sends, with the public
 * report it comes from. The bridge must answer each so that the device carries on uploading.
 */
let bridge: TestBridge;
beforeAll(async () => {
  bridge = await TestBridge.start({ ftp: { idleTimeoutSeconds: 2 } });
});
afterAll(async () => {
  await bridge?.close();
});

function write(socket: Socket, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => socket.write(chunk, (err) => (err ? reject(err) : resolve())));
}

async function session(): Promise<RawFtp> {
  const ftp = await RawFtp.connect(bridge.port);
  await ftp.login(USER, PASSWORD);
  return ftp;
}

/** PASV, then `command` (STOR/STOU) with `body`; the preliminary and final replies. */
async function store(ftp: RawFtp, command: string, body: Buffer): Promise<{ prelim: FtpReply; final: FtpReply }> {
  const data = await ftp.pasv();
  ftp.send(command);
  const prelim = await ftp.reply();
  expect(prelim.code, prelim.text).toBe(150);
  await write(data, body);
  data.end();
  return { prelim, final: await ftp.reply(60_000) };
}

describe('device quirks', () => {
  it('Dahua recorders: ALLO before STOR is answered 200, not 202 (source: hassio-addons/app-ftp#245, camera reconnects in a loop on "202 ALLO ignored"; sequence from alienatedsec/yi-hack-v5#337)', async () => {
    const ftp = await session();
    try {
      expect((await ftp.command('CWD /')).code).toBe(250);
      expect((await ftp.command('PWD')).text).toBe('257 "/" is the current directory');
      expect((await ftp.command('TYPE I')).code).toBe(200);
      expect((await ftp.command('SIZE /ENTRADA/DVRWorkDirectory')).code).toBe(550);
      const body = randomBytes(180_000);
      const data = await ftp.pasv();
      const allo = await ftp.command(`ALLO ${body.length}`);
      expect(allo.code).toBe(200);
      ftp.send('STOR /dahua_snapshot.jpg');
      expect((await ftp.reply()).code).toBe(150);
      await write(data, body);
      data.end();
      expect((await ftp.reply()).code).toBe(226);
      expect(await bridge.objectHash('dahua_snapshot.jpg')).toBe(sha256(body));
    } finally {
      ftp.close();
    }
  });

  it('Lexmark scanners: TYPE L 8 and TYPE A N are accepted, bytes pass unchanged (source: drakkan/sftpgo#1082 "504 Unsupported transfer type"; fclairamb/ftpserverlib#386 and #391)', async () => {
    const ftp = await session();
    try {
      expect((await ftp.command('TYPE L 8')).code).toBe(200);
      expect((await ftp.command('TYPE L8')).code).toBe(200);
      expect((await ftp.command('TYPE A N')).code).toBe(200);
      expect((await ftp.command('TYPE E')).code).toBe(504);
      // A scan in ASCII type still arrives byte for byte: objects are never converted.
      const pdf = Buffer.concat([Buffer.from('%PDF-1.4\r\n\n\r'), randomBytes(50_000)]);
      expect((await store(ftp, 'STOR scan0001.pdf', pdf)).final.code).toBe(226);
      expect(await bridge.objectHash('scan0001.pdf')).toBe(sha256(pdf));
      expect((await ftp.command('TYPE L 8')).code).toBe(200);
    } finally {
      ftp.close();
    }
  });

  it('Reolink cameras: MODE S before STOR is accepted, other modes get 504 (source: fclairamb/ftpserverlib#451)', async () => {
    const ftp = await session();
    try {
      expect((await ftp.command('TYPE I')).code).toBe(200);
      expect((await ftp.command('MODE S')).code).toBe(200);
      expect((await ftp.command('MODE B')).code).toBe(504);
      expect((await ftp.command('MODE Z')).code).toBe(504);
      const body = randomBytes(90_000);
      expect((await store(ftp, 'STOR RLC-510A_00_20261129040000.jpg', body)).final.code).toBe(226);
      expect(await bridge.objectHash('RLC-510A_00_20261129040000.jpg')).toBe(sha256(body));
    } finally {
      ftp.close();
    }
  });

  it('Reolink connection test: CWD //camera_testYYYYMMDDhhmmss, CWD, MKD, then the double-slash CWD works (source: svrooij/ipcam2mqtt#14)', async () => {
    const ftp = await session();
    try {
      expect((await ftp.command('CWD //camera_test20261123080904')).code).toBe(550);
      expect((await ftp.command('CWD camera_test20261123080904')).code).toBe(550);
      expect((await ftp.command('MKD camera_test20261123080904')).code).toBe(257);
      expect((await ftp.command('CWD //camera_test20261123080904')).code).toBe(250);
      expect((await ftp.command('PWD')).text).toBe('257 "/camera_test20261123080904" is the current directory');
      const body = randomBytes(2000);
      expect((await store(ftp, 'STOR test.jpg', body)).final.code).toBe(226);
      expect(await bridge.objectHash('camera_test20261123080904/test.jpg')).toBe(sha256(body));
    } finally {
      ftp.close();
    }
  });

  it('NVRs MKD every path component before each upload: an existing directory answers 257 naming it (sources: ldab/ESP32_FTPClient#53, a 550 on MKD breaks the client; roleoroleo/yi-hack-MStar#485, the reply is grepped for the directory name)', async () => {
    const ftp = await session();
    try {
      const uploads = [randomBytes(30_000), randomBytes(40_000), randomBytes(50_000)];
      for (const [i, body] of uploads.entries()) {
        for (const dir of ['/nvr', '/nvr/ch01', '/nvr/ch01/2026-11-29']) {
          const mkd = await ftp.command(`MKD ${dir}`);
          expect(mkd.code, mkd.text).toBe(257);
          expect(mkd.text).toContain(`"${dir}"`);
          if (i > 0) expect(mkd.text).toMatch(/already exists/);
        }
        expect((await ftp.command('CWD /nvr/ch01/2026-11-29')).code).toBe(250);
        expect((await store(ftp, `STOR 04000${i}.mp4`, body)).final.code).toBe(226);
      }
      for (const [i, body] of uploads.entries()) expect(await bridge.objectHash(`nvr/ch01/2026-11-29/04000${i}.mp4`)).toBe(sha256(body));
      // A file of that name is a real conflict.
      expect((await ftp.command('MKD /nvr/ch01/2026-11-29/040000.mp4')).code).toBe(550);
    } finally {
      ftp.close();
    }
  });

  it('STOU answers "150 FILE: <name>" and stores under that name (sources: RFC 1123 §4.1.2.9; scanners using STOU, drakkan/sftpgo#861)', async () => {
    const ftp = await session();
    try {
      expect((await ftp.command('CWD /')).code).toBe(250);
      const body = randomBytes(12_345);
      const { prelim, final } = await store(ftp, 'STOU', body);
      const m = /^150 FILE: (\S+)$/.exec(prelim.text);
      expect(m).not.toBeNull();
      expect(final.code).toBe(226);
      expect(await bridge.objectHash(m?.[1] as string)).toBe(sha256(body));
    } finally {
      ftp.close();
    }
  });

  it('Intellinet cameras: upload to a temporary name, DELE the target, RNFR/RNTO (source: this project\'s issue 5; the temp-name-then-rename pattern of FileZilla/Pure-FTPd, lavv17/lftp#188)', async () => {
    const ftp = await session();
    try {
      expect((await ftp.command('TYPE I')).code).toBe(200);
      const frames = [randomBytes(60_000), randomBytes(61_000)];
      for (const [i, body] of frames.entries()) {
        expect((await store(ftp, 'STOR image.jpg.tmp', body)).final.code).toBe(226);
        // The first time there is nothing to delete: 550, and the camera goes on.
        expect((await ftp.command('DELE image.jpg')).code).toBe(i === 0 ? 550 : 250);
        expect((await ftp.command('RNFR image.jpg.tmp')).code).toBe(350);
        expect((await ftp.command('RNTO image.jpg')).code).toBe(250);
        expect(await bridge.objectHash('image.jpg')).toBe(sha256(body));
      }
      expect(await bridge.exists('image.jpg.tmp')).toBe(false);
    } finally {
      ftp.close();
    }
  });

  it('scanner and camera setup tests: upload a test file, then DELE it (source: svrooij/ipcam2mqtt#14, camera directory operations happen only in its test)', async () => {
    const ftp = await session();
    try {
      expect((await store(ftp, 'STOR ftp_test_file.txt', Buffer.from('test'))).final.code).toBe(226);
      expect(await bridge.exists('ftp_test_file.txt')).toBe(true);
      expect((await ftp.command('DELE ftp_test_file.txt')).code).toBe(250);
      expect(await bridge.exists('ftp_test_file.txt')).toBe(false);
    } finally {
      ftp.close();
    }
  });

  it('255-character paths are stored, listed, sized and read back (devices name files by channel, date and event)', async () => {
    const ftp = await session();
    try {
      const dirs = ['a'.repeat(60), 'b'.repeat(60), 'c'.repeat(60)];
      const name = 'n'.repeat(67) + '.jpg';
      for (let i = 1; i <= dirs.length; i++) expect((await ftp.command(`MKD /${dirs.slice(0, i).join('/')}`)).code).toBe(257);
      const path = `/${dirs.join('/')}/${name}`;
      expect(path).toHaveLength(255);
      const body = randomBytes(4096);
      expect((await store(ftp, `STOR ${path}`, body)).final.code).toBe(226);
      expect(await bridge.objectHash(path.slice(1))).toBe(sha256(body));
      expect((await ftp.command(`SIZE ${path}`)).text).toBe('213 4096');
      expect(await listText(ftp, `NLST /${dirs.join('/')}`)).toBe(name + '\r\n');
      const data = await ftp.pasv();
      const got = readAll(data);
      ftp.send(`RETR ${path}`);
      expect((await ftp.reply()).code).toBe(150);
      expect(sha256(await got)).toBe(sha256(body));
      expect((await ftp.reply()).code).toBe(226);
    } finally {
      ftp.close();
    }
  });

  it('OPTS UTF8 ON, then non-ASCII names are stored as UTF-8 keys and listed as sent (source: RFC 2640; Windows Explorer and many NVRs send OPTS UTF8 ON)', async () => {
    const ftp = await session();
    try {
      expect((await ftp.command('OPTS UTF8 ON')).code).toBe(200);
      expect((await ftp.command('MKD Überwachung')).code).toBe(257);
      const body = randomBytes(1000);
      expect((await store(ftp, 'STOR Überwachung/Kamera Ä 写真 ñ.jpg', body)).final.code).toBe(226);
      expect(await bridge.objectHash('Überwachung/Kamera Ä 写真 ñ.jpg')).toBe(sha256(body));
      expect(await listText(ftp, 'NLST Überwachung')).toBe('Kamera Ä 写真 ñ.jpg\r\n');
    } finally {
      ftp.close();
    }
  });

  it('SITE commands are answered without harm (source: roleoroleo/yi-hack-Allwinner-v2#101, "site chmod 755" after MKD)', async () => {
    const ftp = await session();
    try {
      const body = randomBytes(500);
      expect((await store(ftp, 'STOR site.bin', body)).final.code).toBe(226);
      for (const cmd of ['SITE CHMOD 755 site.bin', 'SITE UMASK 022', 'SITE IDLE 600', 'SITE HELP', 'SITE UTIME 20260101000000 site.bin']) {
        const reply = await ftp.command(cmd);
        expect(reply.code, cmd).toBe(202);
      }
      expect(await bridge.objectHash('site.bin')).toBe(sha256(body));
      expect(await bridge.keys()).toContain('site.bin');
      expect((await ftp.command('NOOP')).code).toBe(200);
    } finally {
      ftp.close();
    }
  });

  it('a session idle between uploads is kept alive by NOOP beyond the idle timeout (2 s here)', async () => {
    const ftp = await session();
    try {
      expect((await store(ftp, 'STOR idle/1.jpg', randomBytes(100))).final.code).toBe(226);
      const until = Date.now() + 4500;
      while (Date.now() < until) {
        expect((await ftp.command('NOOP')).code).toBe(200);
        await sleep(500);
      }
      const body = randomBytes(200);
      expect((await store(ftp, 'STOR idle/2.jpg', body)).final.code).toBe(226);
      expect(await bridge.objectHash('idle/2.jpg')).toBe(sha256(body));
      // Without NOOPs the same wait ends the session: the keep-alive above is what held it.
      const other = await session();
      const closed = new Promise<void>((resolve) => other.socket.once('close', () => resolve()));
      await Promise.race([closed, sleep(20_000).then(() => Promise.reject(new Error('idle session was not closed')))]);
    } finally {
      ftp.close();
    }
  });

  it('SIZE in ASCII mode answers the stored size (objects are never converted; vsftpd refuses SIZE in ASCII mode)', async () => {
    await bridge.put('ascii.txt', 'line one\nline two\n');
    const ftp = await session();
    try {
      expect((await ftp.command('TYPE A')).code).toBe(200);
      expect((await ftp.command('SIZE ascii.txt')).text).toBe('213 18');
      expect((await ftp.command('TYPE I')).code).toBe(200);
      expect((await ftp.command('SIZE ascii.txt')).text).toBe('213 18');
    } finally {
      ftp.close();
    }
  });
});
