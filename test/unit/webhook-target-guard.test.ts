import { lookup } from 'node:dns/promises';
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { RequestValidationError } from '../../src/errors.js';
import { checkWebhookUrl, isRefusedAddress } from '../../src/webhooks/target-guard.js';

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
  ])('refuses %s', async (url) => {
    const error = await refusal(url);
    expect(error.field).toBe('webhook_url');
    expect(error.code).toBe('invalid_webhook_url');
    expect(error.message).toMatch(/webhook_url: .*(this machine|loopback, private)/);
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
    expect(error.field).toBe('webhook_url');
    expect(error.message).toMatch(/does not resolve/);
  });

  it.each([
    'https://93.184.215.14/hook',
    'http://8.8.8.8:8080/hook?token=abc',
    'https://172.32.0.1/hook', // just past 172.16/12
    'https://100.128.0.1/hook', // just past 100.64/10
    'https://[2606:4700:4700::1111]/hook',
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
