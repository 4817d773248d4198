#!/usr/bin/env python3
"""Buckets a `perf script -F comm,tid,ip,sym,dso` dump of the redwasm host into where-the-time-goes
categories (see bench/README.md, "Where the time goes").

Usage:
  perf record -e cpu-clock -F 499 --call-graph dwarf,32768 -p <redwasm pid> -o host.data -- sleep 8
  perf script -i host.data -F comm,tid,ip,sym,dso > host.script
  python3 perf_classify.py host.script [x [CATEGORY_LETTER]]

Each sample goes to the nearest recognised frame from the leaf up (generic wasmtime/tokio frames
only when nothing more specific is found); JIT'd guest code shows as [unknown] in perf-<pid>.map;
import trampolines called from the guest are re-attributed to the import they serve in the roll-up.
"""
import sys, re, collections
path = sys.argv[1]
samples = []
cur = None
for line in open(path, errors='replace'):
    if not line.strip():
        if cur is not None: samples.append(cur); cur = None
        continue
    if not line.startswith('\t') and not line.startswith(' '):
        cur = {'comm': line.split()[0], 'frames': []}
        continue
    parts = line.strip().split(' ', 1)
    if len(parts) < 2: continue
    rest = parts[1]
    m = re.match(r'(.*) \(([^()]*)\)$', rest)
    sym, dso = (m.group(1), m.group(2)) if m else (rest, '')
    head = sym
    for _ in range(20):
        n = re.sub(r'<[^<>]*>', '', head)
        if n == head: break
        head = n
    cur['frames'].append((head, dso)); cur.setdefault('raw', []).append(sym)
if cur: samples.append(cur)

def has(frames, *needles):
    return any(any(n in s for n in needles) for s, d in frames)

RULES = [
    (('redwasm::redis', 'redis::', 'combine::'), 'C Redis: host import, sandbox, redis-rs, its socket I/O'),
    (('redwasm::variables',), 'B variables::get host calls'),
    (('wasmtime_wasi_http::handler',), 'H wasi-http ProxyHandler/Worker (scheduling, call_async, fibers)'),
    (('wasmtime_wasi_http', 'wasmtime_wasi', 'wasmtime_internal_wasi'), 'I wasi-http/wasi resources, bodies, streams'),
    (('hyper::', 'hyper_util', 'http_body_util'), 'L hyper server (parse, encode, socket syscalls)'),
    (('redwasm::trigger', 'redwasm::metrics', 'redwasm::routes', 'redwasm::engine'), 'K redwasm trigger dispatch (routing, headers, metrics)'),
    (('wasmtime::', 'wasmtime_internal', 'wasmtime_fiber', 'cranelift'), 'J wasmtime runtime (component calls, lifting/lowering, fibers)'),
    (('tokio::', 'mio::'), 'M tokio scheduler, timers, io driver'),
]
def cat(fr):
    if not fr: return 'empty'
    if has(fr, 'instantiate', 'new_store', 'drop_in_place<wasmtime::runtime::store::Store', 'InstanceAllocator', 'PoolingInstanceAllocator', 'allocate_module', 'deallocate_module', 'deallocate_memories'):
        return 'A instance create/destroy (instantiate, store new/drop)'
    leaf_s, leaf_d = fr[0]
    generic = None
    for s_, d_ in fr:
        if 'perf-' in d_ or s_ == '[unknown]':
            if generic: return 'G wasmtime import/export call overhead (trampolines, canonical ABI, tasks)'
            return 'D guest wasm code (JIT)'
        for needles, name in RULES:
            if any(s_.startswith(n) or s_.startswith('<' + n) for n in needles):
                if name[0] in 'JM':
                    generic = generic or name
                else:
                    return name
    if generic: return generic
    if all('kernel' in d for s, d in fr):
        return 'N kernel only (irq, softirq, scheduler)'
    return 'O other (' + fr[0][0][:60] + ')'

counts = collections.Counter()
examples = collections.defaultdict(collections.Counter)
for s in samples:
    c = cat(s['frames'])
    if c.startswith('G') or c.startswith('J'):
        imp = 'unknown'
        for r in s.get('raw', []):
            m = re.search(r'add_to_linker[^:]*::\{closure_env#(\d+)\}<[^,]*, ([^,>]*)', r)
            m2 = re.search(r'(wasmtime_wasi[_a-z]*::[a-z0-9_:]*bindings[a-z0-9_:]*)::add_to_linker', r) or re.search(r'((?:redwasm|wasmtime_wasi[_a-z]*)::[a-z0-9_:]+)::add_to_linker', r)
            if m2:
                imp = m2.group(1) + ('#' + m.group(1) if m else '')
                break
        examples[c[0]][imp] += 1
    if c.startswith('O other'):
        examples['O'][c] += 1
        c = 'O other'
    counts[c] += 1
total = sum(counts.values())
print(f'{total} samples')
for c, n in sorted(counts.items()):
    print(f'  {100*n/total:5.1f}%  {c}')
if len(sys.argv) > 2:
    for k in examples:
        print(k)
        for c, n in examples[k].most_common(15): print('   ', n, c)

if len(sys.argv) > 3:
    want = sys.argv[3]
    selfc = collections.Counter()
    for s in samples:
        if cat(s['frames'])[0] == want:
            # first non-libc/kernel frame
            name = s['frames'][0][0]
            for f, d in s['frames']:
                if 'kernel' not in d and 'libc' not in d:
                    name = f; break
            selfc[name[:110]] += 1
    for n, c in selfc.most_common(25): print(f'{c:5d} {n}')

# Family roll-up: G samples re-attributed by the import they serve.
fam = collections.Counter()
for s in samples:
    c = cat(s['frames'])
    k = c[0]
    if k == 'G':
        raw = ' '.join(s.get('raw', []))
        if 'spin::redis' in raw: k = 'C'
        elif 'spin::variables' in raw: k = 'B'
        elif 'wasi::http' in raw or 'wasi::io' in raw or 'wasmtime_wasi' in raw: k = 'I'
    fam[k] += 1
names = {'A':'instance create/destroy','B':'variables::get (5 calls/request)','C':'Redis import: lift/lower, sandbox, redis-rs, socket','D':'guest wasm code','G':'other import trampolines','H':'wasi-http ProxyHandler/Worker, call_async, fibers','I':'wasi-http/wasi-io imports & body plumbing','J':'wasmtime other','K':'redwasm trigger dispatch','L':'hyper server incl. socket syscalls','M':'tokio','N':'kernel only','O':'other'}
tot = sum(fam.values())
print('roll-up:')
for k, n in sorted(fam.items(), key=lambda x: -x[1]):
    print(f'  {100*n/tot:5.1f}%  {names.get(k,k)}')
