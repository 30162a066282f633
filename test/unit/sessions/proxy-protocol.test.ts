import { describe, expect, it } from 'vitest';
import { HeaderSniffer, ProxyProtocolGate, V2_SIGNATURE, parseHeader } from '../../../src/sessions/proxy-protocol.js';

const v2 = (command: number, familyTransport: number, addresses: number[]) =>
  Buffer.concat([V2_SIGNATURE, Buffer.from([0x20 | command, familyTransport, addresses.length >> 8, addresses.length & 255, ...addresses])]);

describe('parseHeader (framed header, parsed by proxy-protocol-js)', () => {
  it('v1 TCP4 and TCP6 name their source; mismatched families, bad ports and UNKNOWN are refused', () => {
    expect(parseHeader(Buffer.from('PROXY TCP4 192.0.2.1 192.0.2.2 1234 21\r\n'))).toEqual({ clientAddress: '192.0.2.1', local: false });
    expect(parseHeader(Buffer.from('PROXY TCP6 2001:db8::1 2001:db8::2 1234 21\r\n'))).toEqual({ clientAddress: '2001:db8::1', local: false });
    expect(parseHeader(Buffer.from('PROXY TCP4 2001:db8::1 192.0.2.2 1234 21\r\n'))).toEqual({ refused: 'proxy-header-invalid' });
    expect(parseHeader(Buffer.from('PROXY TCP4 192.0.2.1 192.0.2.2 99999 21\r\n'))).toEqual({ refused: 'proxy-header-invalid' });
    expect(parseHeader(Buffer.from('PROXY TCP4 not-an-ip 192.0.2.2 1 21\r\n'))).toEqual({ refused: 'proxy-header-invalid' });
    expect(parseHeader(Buffer.from('PROXY UNKNOWN\r\n'))).toEqual({ refused: 'proxy-header-invalid' });
  });

  it('v2 PROXY over IPv4 and IPv6 (compressed, IPv4-mapped folded), LOCAL, and what is refused', () => {
    expect(parseHeader(v2(1, 0x11, [203, 0, 113, 9, 10, 0, 0, 1, 0, 80, 0, 21]))).toEqual({ clientAddress: '203.0.113.9', local: false });
    const six = [0x20, 0x01, 0x0d, 0xb8, ...new Array<number>(11).fill(0), 7, ...new Array<number>(16).fill(0), 0, 80, 0, 21];
    expect(parseHeader(v2(1, 0x21, six))).toEqual({ clientAddress: '2001:db8::7', local: false });
    const mapped = [...new Array<number>(10).fill(0), 0xff, 0xff, 198, 51, 100, 3, ...new Array<number>(16).fill(0), 0, 80, 0, 21];
    expect(parseHeader(v2(1, 0x21, mapped))).toEqual({ clientAddress: '198.51.100.3', local: false });
    expect(parseHeader(v2(0, 0x00, []))).toEqual({ local: true });
    // UDP, UNSPEC with PROXY, a length shorter than the family's addresses, version 1 in the v2 form.
    expect(parseHeader(v2(1, 0x12, [203, 0, 113, 9, 10, 0, 0, 1, 0, 80, 0, 21]))).toEqual({ refused: 'proxy-header-unsupported' });
    expect(parseHeader(v2(1, 0x00, []))).toEqual({ refused: 'proxy-header-unsupported' });
    expect(parseHeader(v2(1, 0x11, [203, 0, 113]))).toEqual({ refused: 'proxy-header-invalid' });
    const v1InV2 = v2(1, 0x11, [203, 0, 113, 9, 10, 0, 0, 1, 0, 80, 0, 21]);
    v1InV2[12] = 0x11;
    expect(parseHeader(v1InV2)).toEqual({ refused: 'proxy-header-invalid' });
  });
});

describe('HeaderSniffer', () => {
  it('tells a header start from a command within its first bytes, across chunks', () => {
    const split = new HeaderSniffer();
    expect(split.push(Buffer.from('PRO'))).toBe('undecided');
    expect(split.push(Buffer.from('XY TCP4'))).toBe('header');
    const v2Start = new HeaderSniffer();
    expect(v2Start.push(V2_SIGNATURE.subarray(0, 5))).toBe('undecided');
    expect(v2Start.push(V2_SIGNATURE.subarray(5))).toBe('header');
    expect(new HeaderSniffer().push(Buffer.from('PWD\r\n'))).toBe('clean');
    expect(new HeaderSniffer().push(Buffer.from('PROXYZ'))).toBe('clean');
    expect(new HeaderSniffer().push(Buffer.from('\r\n\r\nUSER a'))).toBe('clean');
  });
});

describe('ProxyProtocolGate', () => {
  it('trusts only the listed sources, and nothing when disabled', () => {
    const gate = new ProxyProtocolGate({ enabled: true, trustedProxies: ['10.0.0.0/8', '2001:db8::1'], headerTimeoutSeconds: 5 });
    expect(gate.trusts('10.1.2.3')).toBe(true);
    expect(gate.trusts('::ffff:10.1.2.3')).toBe(true);
    expect(gate.trusts('2001:db8::1')).toBe(true);
    expect(gate.trusts('192.0.2.1')).toBe(false);
    expect(gate.trusts(undefined)).toBe(false);
    expect(new ProxyProtocolGate({ enabled: false, trustedProxies: ['10.0.0.0/8'], headerTimeoutSeconds: 5 }).trusts('10.1.2.3')).toBe(false);
  });
});
