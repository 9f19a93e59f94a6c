import { lookup } from 'node:dns/promises';
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { RequestValidationError } from '../../src/errors.js';
import {
  checkWebhookUrl,
  isRefusedAddress,
  WebhookHostUnresolvedError,
} from '../../src/webhooks/target-guard.js';

const guard = (url: string) => checkWebhookUrl(url, { allowPrivate: false });

async function refusal(url: string): Promise<RequestValidationError> {
  try {
    await guard(url);
  } catch (error) {
    expect(error).toBeInstanceOf(RequestValidationError);
    return error as RequestValidationError;
  }
  throw new Error(`${url} was accepted`);
}

describe('the webhook target guard', () => {
  it.each([
    'http://127.0.0.1/hook',
    'http://127.1.2.3:8080/hook',
    'http://localhost/hook',
    'http://LOCALHOST./hook',
    'http://api.localhost/hook',
    'http://10.0.0.1/hook',
    'http://172.16.5.4/hook',
    'http://172.31.255.255/hook',
    'http://192.168.1.1/hook',
    'http://169.254.169.254/latest/meta-data/',
    'http://100.64.0.1/hook',
    'http://0.0.0.0/hook',
    'http://[::1]/hook',
    'http://[::]/hook',
    'http://[fd00::1]/hook',
    'http://[fc00::1]/hook',
    'http://[fe80::1]/hook',
    'http://[::ffff:127.0.0.1]/hook',
    'http://[::ffff:169.254.169.254]/hook',
    'http://[::ffff:a00:1]/hook',
    'http://[::127.0.0.1]/hook',
    'http://2130706433/hook', // 127.0.0.1 as one decimal number
    'http://0x7f.1/hook', // 127.0.0.1 in hex shorthand
    'http://017700000001/hook', // 127.0.0.1 in octal
    'http://224.0.0.1/hook',
    // Ranges that embed an IPv4 address: refused when that address is.
    'http://[64:ff9b::a9fe:a9fe]/latest/meta-data/', // NAT64 of 169.254.169.254
    'http://[64:ff9b::127.0.0.1]/hook', // NAT64 of loopback
    'http://[64:ff9b::a00:1]/hook', // NAT64 of 10.0.0.1
    'http://[64:ff9b:1::808:808]/hook', // local-use NAT64: refused whole
    'http://[2002:a9fe:a9fe::1]/hook', // 6to4 behind 169.254.169.254
    'http://[2002:7f00:1::]/hook', // 6to4 behind 127.0.0.1
    'http://[2002:c0a8:101::1]/hook', // 6to4 behind 192.168.1.1
    'http://[::ffff:0:7f00:1]/hook', // IPv4-translated 127.0.0.1
    // Ranges refused whole.
    'http://[fec0::1]/hook', // site-local
    'http://[2001:db8::1]/hook', // documentation
    'http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook', // Teredo
    'http://[100::1]/hook', // discard-only
    'http://198.18.0.1/hook', // benchmarking
    'http://198.19.255.255/hook',
    'http://192.0.0.170/hook', // IETF protocol assignments (NAT64 discovery)
    'http://192.0.2.1/hook', // documentation
    'http://198.51.100.7/hook',
    'http://203.0.113.9/hook',
  ])('refuses %s', async (url) => {
    const error = await refusal(url);
    expect(error.field).toBe('webhook_url');
    expect(error.code).toBe('invalid_webhook_url');
    expect(error.message).toMatch(/webhook_url: .*(this machine|loopback, private)/);
    expect(error.message).toMatch(/RENDERMILL_ALLOW_PRIVATE_URLS=true/);
  });

  it.each([
    ['ftp://example.com/hook', /http or https/],
    ['file:///etc/passwd', /http or https/],
    ['javascript:alert(1)', /http or https/],
    ['not a url', /not a valid URL/],
    ['https://user:pass@93.184.215.14/hook', /user name or password/],
  ])('refuses %s', async (url, message) => {
    const error = await refusal(url);
    expect(error.code).toBe('invalid_webhook_url');
    expect(error.message).toMatch(message);
  });

  it('refuses a host name that resolves to this machine or the private network', async () => {
    // The machine's own name resolves through /etc/hosts (or nss-myhostname) to a loopback
    // or private address — without any network.
    const name = hostname();
    const addresses = await lookup(name, { all: true });
    expect(addresses.some((a) => isRefusedAddress(a.address))).toBe(true);
    const error = await refusal(`https://${name}/hook`);
    expect(error.message).toMatch(/resolves to/);
  });

  it('refuses a host name that does not resolve, as a 400 naming the field', async () => {
    const error = await refusal('https://no-such-host.invalid/hook');
    // Its own class: a delivery retries it, since DNS failing for a while is not a refusal.
    expect(error).toBeInstanceOf(WebhookHostUnresolvedError);
    expect(error.retryable).toBe(true);
    expect(error.field).toBe('webhook_url');
    expect(error.message).toMatch(/does not resolve/);
  });

  it.each([
    'https://93.184.215.14/hook',
    'http://8.8.8.8:8080/hook?token=abc',
    'https://172.32.0.1/hook', // just past 172.16/12
    'https://100.128.0.1/hook', // just past 100.64/10
    'https://[2606:4700:4700::1111]/hook',
    'https://198.20.0.1/hook', // just past 198.18/15
    'https://203.0.114.1/hook', // just past 203.0.113/24
    // NAT64 and 6to4 of a public IPv4 address: on an IPv6-only network with DNS64 this is how
    // an IPv4-only public host is reached.
    'https://[64:ff9b::808:808]/hook',
    'https://[64:ff9b::93.184.215.14]/hook',
    'https://[2002:808:808::1]/hook',
  ])('accepts the public address %s', async (url) => {
    await expect(guard(url)).resolves.toBeUndefined();
  });

  it('lets private targets through when allowed, but still only http(s)', async () => {
    const allow = { allowPrivate: true };
    await expect(checkWebhookUrl('http://127.0.0.1:9/hook', allow)).resolves.toBeUndefined();
    await expect(checkWebhookUrl('http://localhost/hook', allow)).resolves.toBeUndefined();
    await expect(checkWebhookUrl('gopher://127.0.0.1/', allow)).rejects.toThrow(/http or https/);
  });
});
