import { mkdtempSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  LUA_DIR,
  LUA_SCRIPTS,
  LuaScriptError,
  VARIABLE_KEY_SCRIPTS,
  luaSources,
  readLuaScript,
} from '../../src/redis/lua-scripts.js';

/** A folder of scripts written for one test. */
function scriptDir(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'rendermill-lua-'));
  mkdirSync(path.join(dir, 'includes'));
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  return dir;
}

describe('Lua scripts', () => {
  it('loads every script file, and every file in the folder is a script', () => {
    const files = readdirSync(LUA_DIR)
      .filter((name) => name.endsWith('.lua'))
      .map((name) => name.slice(0, -'.lua'.length))
      .sort();
    expect(
      Object.values(LUA_SCRIPTS)
        .map((spec) => spec.file)
        .sort(),
    ).toEqual(files);
    expect(luaSources().size).toBe(files.length);
  });

  it('begins every script with a header naming its KEYS, ARGV and what it returns', () => {
    for (const { file } of Object.values(LUA_SCRIPTS)) {
      const text = readFileSync(path.join(LUA_DIR, `${file}.lua`), 'utf8');
      const header = text.slice(0, text.search(/^(?!--)/m));
      expect(header, file).toMatch(/^-- KEYS: /m);
      expect(header, file).toMatch(/^-- ARGV: /m);
      expect(header, file).toMatch(/^-- Returns: /m);
    }
  });

  it('resolves includes: the shared hold piece is in every ledger script, once', () => {
    const hold = readFileSync(path.join(LUA_DIR, 'includes', 'hold.lua'), 'utf8');
    for (const name of ['rmTransition', 'rmReserve', 'rmChargeHold', 'rmDelete'] as const) {
      const source = luaSources().get(name)!;
      expect(source).toContain(hold);
      expect(source.split('local function releaseHold(').length - 1).toBe(1);
    }
    for (const source of luaSources().values()) expect(source).not.toMatch(/^--- @include/m);
  });

  it('puts an include met twice, directly or through another include, in once', () => {
    const dir = scriptDir({
      'main.lua': '--- @include "a"\n--- @include "b"\nreturn 1\n',
      'includes/a.lua': '--- @include "b"\nlocal a = 1\n',
      'includes/b.lua': 'local b = 2\n',
    });
    const lines = readLuaScript('main', dir)
      .split('\n')
      .filter((line) => line !== '');
    expect(lines).toEqual(['local b = 2', 'local a = 1', 'return 1']);
  });

  it('refuses a missing include with an error naming the script and the include', () => {
    const dir = scriptDir({ 'main.lua': '--- @include "nowhere"\nreturn 1\n' });
    expect(() => readLuaScript('main', dir)).toThrow(LuaScriptError);
    expect(() => readLuaScript('main', dir)).toThrow(
      /main\.lua includes "nowhere".*includes\/nowhere\.lua/,
    );
  });

  it('refuses an include that includes itself round a loop', () => {
    const dir = scriptDir({
      'main.lua': '--- @include "a"\nreturn 1\n',
      'includes/a.lua': '--- @include "b"\n',
      'includes/b.lua': '--- @include "a"\n',
    });
    expect(() => readLuaScript('main', dir)).toThrow(/include "a" includes itself/);
  });

  it('knows which scripts take a varying number of keys (kept out of cluster auto-pipelining)', () => {
    expect(VARIABLE_KEY_SCRIPTS.sort()).toEqual(['rmReserve', 'rmTransition']);
  });

  it('has one compare-and-delete script', () => {
    const compareAndDelete = [...luaSources().values()].filter((source) =>
      /redis\.call\('GET', KEYS\[1\]\) == ARGV\[1\] then return redis\.call\('DEL'/.test(source),
    );
    expect(compareAndDelete).toHaveLength(1);
  });
});
