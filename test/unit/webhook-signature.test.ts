import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  signWebhook,
  verifyWebhook,
  webhookHmacKey,
  WebhookVerificationError,
} from '../../src/webhooks/signature.js';
import {
  generateWebhookSecret,
  webhookSecretKey,
  webhookSecretProblem,
} from '../../src/config/webhook-secret-format.js';

// The Standard Webhooks reference test vector (the spec's libraries test against it).
const VECTOR = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};

const headersFor = (id: string, timestamp: number, signature: string) => ({
  'webhook-id': id,
  'webhook-timestamp': String(timestamp),
  'webhook-signature': signature,
});

describe('webhook signatures (Standard Webhooks)', () => {
  it('signs the reference vector exactly as the spec does', () => {
    const { secret, id, timestamp, body, signature } = VECTOR;
    expect(signWebhook(secret, id, timestamp, body)).toBe(signature);
    expect(signWebhook(secret, id, timestamp, Buffer.from(body))).toBe(signature);
  });

  it('matches an HMAC-SHA256 computed by hand over id.timestamp.body with the decoded key', () => {
    const secret = generateWebhookSecret();
    const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
    const expected = createHmac('sha256', key).update('evt_1.1700000000.{"a":1}').digest('base64');
    expect(signWebhook(secret, 'evt_1', 1_700_000_000, '{"a":1}')).toBe(`v1,${expected}`);
  });

  it('verifies a genuine webhook and returns its parsed body', () => {
    const { secret, id, timestamp, body, signature } = VECTOR;
    const event = verifyWebhook(secret, headersFor(id, timestamp, signature), body, {
      now: timestamp * 1000 + 60_000,
    });
    expect(event).toEqual({ test: 2432232314 });
  });

  it('reads fetch Headers and node header records alike, in any case', () => {
    const { secret, id, timestamp, body, signature } = VECTOR;
    const now = timestamp * 1000;
    expect(
      verifyWebhook(secret, new Headers(headersFor(id, timestamp, signature)), body, { now }),
    ).toEqual({ test: 2432232314 });
    const shouted = {
      'Webhook-Id': id,
      'WEBHOOK-TIMESTAMP': String(timestamp),
      'Webhook-Signature': signature,
    };
    expect(verifyWebhook(secret, shouted, Buffer.from(body), { now })).toEqual({
      test: 2432232314,
    });
  });

  it.each([
    ['a tampered body', { body: '{"test": 2432232315}' }, /no webhook-signature matches/],
    ['another id', { id: 'msg_other' }, /no webhook-signature matches/],
    ['another secret', { secret: generateWebhookSecret() }, /no webhook-signature matches/],
    ['a timestamp 6 minutes old', { now: (VECTOR.timestamp + 360) * 1000 }, /more than 300 s/],
    ['a timestamp 6 minutes ahead', { now: (VECTOR.timestamp - 360) * 1000 }, /more than 300 s/],
    [
      'an unknown signature version',
      { signature: VECTOR.signature.replace('v1,', 'v2,') },
      /no webhook-signature/,
    ],
    ['no signature header', { signature: '' }, /missing/],
  ])('refuses %s', (_, change, message) => {
    const v = { ...VECTOR, now: VECTOR.timestamp * 1000, ...change };
    const headers = headersFor(v.id, VECTOR.timestamp, v.signature);
    expect(() => verifyWebhook(v.secret, headers, v.body, { now: v.now })).toThrow(
      WebhookVerificationError,
    );
    expect(() => verifyWebhook(v.secret, headers, v.body, { now: v.now })).toThrow(message);
  });

  it('refuses a timestamp that was changed, since it is signed too', () => {
    const { secret, id, timestamp, body, signature } = VECTOR;
    expect(() =>
      verifyWebhook(secret, headersFor(id, timestamp + 1, signature), body, {
        now: timestamp * 1000,
      }),
    ).toThrow(/no webhook-signature matches/);
  });

  it('accepts any one of several signatures (a rotated secret still honoured)', () => {
    const [oldSecret, newSecret] = [generateWebhookSecret(), generateWebhookSecret()];
    const now = Date.now();
    const ts = Math.floor(now / 1000);
    const both = `${signWebhook(newSecret, 'evt_r', ts, '{}')} ${signWebhook(oldSecret, 'evt_r', ts, '{}')}`;
    for (const secret of [oldSecret, newSecret]) {
      expect(verifyWebhook(secret, headersFor('evt_r', ts, both), '{}', { now })).toEqual({});
    }
    expect(() =>
      verifyWebhook(generateWebhookSecret(), headersFor('evt_r', ts, both), '{}', { now }),
    ).toThrow(WebhookVerificationError);
  });
});

describe('webhook secrets', () => {
  it('are whsec_ and 32 random bytes, different every time', () => {
    const a = generateWebhookSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(webhookSecretKey(a)).toHaveLength(32);
    expect(generateWebhookSecret()).not.toBe(a);
    expect(webhookSecretProblem(a)).toBeUndefined();
  });

  it('are checked with the very key that signs', () => {
    for (const secret of [
      VECTOR.secret,
      generateWebhookSecret(),
      'MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
    ]) {
      expect(webhookSecretKey(secret).equals(webhookHmacKey(secret))).toBe(true);
    }
  });

  it.each([
    ['no prefix', 'MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', /whsec_/],
    ['not base64', 'whsec_not base64!', /base64/],
    ['too short', `whsec_${Buffer.alloc(16).toString('base64')}`, /24–64 bytes/],
  ])('explain what is wrong with a configured secret: %s', (_, secret, problem) => {
    expect(webhookSecretProblem(secret)).toMatch(problem);
  });
});
