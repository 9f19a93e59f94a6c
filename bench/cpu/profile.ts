import { readFileSync } from 'node:fs';

/** The parts of a V8 `.cpuprofile` (what `node --cpu-prof` writes) the summary reads. */
interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    children?: number[];
  }[];
  /** Microseconds, on the process's monotonic clock. */
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileLine {
  name: string;
  ms: number;
  /** Of the busy time (everything but idle) in the window. */
  share: number;
}

export interface ProfileSummary {
  /** The part of the profile summarised, ms from its start, and its length. */
  windowMs: [number, number];
  busyMs: number;
  idleMs: number;
  /** Functions by self time (native frames named as such). */
  topFunctions: ProfileLine[];
  /** Self time by package or area; a native frame (url-less builtin) counts to its caller's area. */
  byArea: ProfileLine[];
  /**
   * Self time by the package or part of rendermill whose call led there: Node's own code and
   * builtins count to their nearest caller outside Node (undici counts as a package).
   */
  byOwner: ProfileLine[];
  /** Url-less builtins (JSON.parse, Buffer work, …) by name, whoever called them. */
  natives: ProfileLine[];
}

const VM_FRAMES = new Map<string, string>(
  Object.entries({
    '(garbage collector)': 'V8: garbage collector',
    '(program)': 'V8: (program) — native code outside JS frames',
    '(root)': 'V8: (root)',
  }),
);

/** Where a frame's code lives: a package, a part of rendermill, Node itself, or V8. */
export function areaOf(url: string, functionName: string): string | undefined {
  const vm = VM_FRAMES.get(functionName);
  if (vm) return vm;
  if (url === '') return undefined;
  const modules = url.lastIndexOf('/node_modules/');
  if (modules >= 0) {
    const [first, second] = url.slice(modules + '/node_modules/'.length).split('/');
    const name = first?.startsWith('@') ? `${first}/${second}` : (first ?? '?');
    if (name.startsWith('@aws-sdk/') || name.startsWith('@smithy/') || name.startsWith('@aws-'))
      return `AWS SDK (${name.split('/')[0]})`;
    return name;
  }
  if (url.startsWith('node:internal/deps/undici')) return 'undici (Node fetch)';
  if (url.startsWith('node:internal/deps/')) return `node dep: ${url.split('/')[2]}`;
  if (url.startsWith('node:')) {
    const parts = url.replace(/^node:(internal\/)?/, '').split('/');
    return `node: ${parts.length > 1 ? parts[0] : parts[0]!.replace(/\.js$/, '')}`;
  }
  const own = /\/dist\/(src|jobs|workers|infra)\/([^/]+)/.exec(url);
  if (own) return `rendermill ${own[1]}/${own[2]!.replace(/\.js$/, '')}`;
  return url.startsWith('file://') ? 'other file' : url;
}

const shortUrl = (url: string) =>
  url
    .replace(/^file:\/\/.*\/node_modules\//, '')
    .replace(/^file:\/\/.*\/dist\//, '')
    .replace(/^node:internal\/deps\//, 'node:');

/**
 * Self time of a `.cpuprofile` within [fromMs, toMs] of its own clock (ms after its start;
 * undefined = the whole profile): the top functions, by area, and the builtins.
 */
export function summariseProfile(
  file: string,
  window?: { fromMs: number; toMs: number },
  top = 25,
): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes)
    for (const child of node.children ?? []) parent.set(child, node.id);

  // A builtin's time goes to the nearest caller that has code of its own.
  const areaCache = new Map<number, string>();
  const callerArea = (id: number): string => {
    const cached = areaCache.get(id);
    if (cached) return cached;
    const node = byId.get(id)!;
    const own = areaOf(node.callFrame.url, node.callFrame.functionName);
    const up = parent.get(id);
    const area = own ?? (up === undefined ? 'native (no JS caller)' : callerArea(up));
    areaCache.set(id, area);
    return area;
  };

  // Whose call it was: the nearest frame that is neither Node's own code nor a builtin.
  const ownerCache = new Map<number, string>();
  const ownerArea = (id: number): string => {
    const cached = ownerCache.get(id);
    if (cached) return cached;
    const node = byId.get(id)!;
    const own = areaOf(node.callFrame.url, node.callFrame.functionName);
    const up = parent.get(id);
    const owner =
      own && !own.startsWith('node: ')
        ? own
        : up === undefined
          ? `${own ?? 'native'} (no caller outside Node)`
          : ownerArea(up);
    ownerCache.set(id, owner);
    return owner;
  };

  const totalMs = (profile.endTime - profile.startTime) / 1000;
  const from = window?.fromMs ?? 0;
  const to = window?.toMs ?? totalMs;
  const selfMs = new Map<number, number>();
  let t = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += (profile.timeDeltas[i] ?? 0) / 1000;
    if (t < from || t > to) continue;
    // A sample stands for the time until the next one.
    const ms = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    const id = profile.samples[i]!;
    selfMs.set(id, (selfMs.get(id) ?? 0) + ms);
  }

  let idleMs = 0;
  const functions = new Map<string, number>();
  const areas = new Map<string, number>();
  const natives = new Map<string, number>();
  const owners = new Map<string, number>();
  const add = (map: Map<string, number>, key: string, ms: number) =>
    map.set(key, (map.get(key) ?? 0) + ms);
  for (const [id, ms] of selfMs) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    if (functionName === '(idle)') {
      idleMs += ms;
      continue;
    }
    const name = functionName || '(anonymous)';
    if (url === '' && !VM_FRAMES.has(functionName)) add(natives, `${name} (builtin)`, ms);
    add(
      functions,
      url === '' ? `${name} (builtin)` : `${name} ${shortUrl(url)}:${lineNumber + 1}`,
      ms,
    );
    add(areas, callerArea(id), ms);
    add(owners, ownerArea(id), ms);
  }
  const busyMs = [...areas.values()].reduce((sum, ms) => sum + ms, 0);
  const lines = (map: Map<string, number>, limit: number): ProfileLine[] =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, limit)
      .map(([name, ms]) => ({ name, ms: Math.round(ms), share: busyMs ? ms / busyMs : 0 }));
  return {
    windowMs: [Math.round(from), Math.round(to)],
    busyMs: Math.round(busyMs),
    idleMs: Math.round(idleMs),
    topFunctions: lines(functions, top),
    byArea: lines(areas, top),
    byOwner: lines(owners, top),
    natives: lines(natives, 10),
  };
}

/** A summary as markdown tables: by area, then the top functions, then the builtins. */
export function profileMarkdown(title: string, summary: ProfileSummary, perImage?: number) {
  const per = (ms: number) => (perImage ? ` | ${(ms / perImage).toFixed(2)}` : '');
  const head = perImage ? ' | ms / image' : '';
  const rule = perImage ? ' | ---' : '';
  const table = (label: string, rows: ProfileLine[]) => [
    `| ${label} | ms | share${head} |`,
    `| --- | --- | ---${rule} |`,
    ...rows.map(
      (row) =>
        `| ${row.name.replace(/\|/g, '\\|')} | ${row.ms} | ${(row.share * 100).toFixed(1)} %${per(row.ms)} |`,
    ),
  ];
  return [
    `#### ${title}`,
    '',
    `Busy ${summary.busyMs} ms (idle ${summary.idleMs} ms) in the window ` +
      `${summary.windowMs[0]}–${summary.windowMs[1]} ms of the profile.`,
    '',
    ...table('area (self time; builtins count to their caller)', summary.byArea),
    '',
    ...table(
      'owner (self time; Node core and builtins count to the package or rendermill code that called them)',
      summary.byOwner,
    ),
    '',
    ...table('function (self time)', summary.topFunctions),
    '',
    ...table('builtin (self time, any caller)', summary.natives),
    '',
  ].join('\n');
}
