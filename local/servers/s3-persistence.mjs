// On-disk state for the local S3 server (s3-server.mjs) when it runs as `lifeboat local up`'s
// long-lived server: the buckets, every object and version (its bytes in blobs/<n>, written once,
// since a version's bytes never change; the local tamper endpoint makes a new object), the
// versioning and Object Lock state, all in state.json. After every request that changes
// something the state is written again, shortly after (debounced) and atomically (a temp file
// renamed over the old one), and once more at shutdown; blobs no object refers to any more are
// removed after the state that drops them is on disk. Multipart uploads in progress and the
// SNS/SQS side are not kept: a restart loses them, as a crash of a client mid-upload would.
import { Buffer } from 'node:buffer';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { readdir, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import process from 'node:process';
import { clearTimeout, setTimeout } from 'node:timers';

const FORMAT = 1;
const STATE = 'state.json';
const BLOBS = 'blobs';
const DEBOUNCE_MS = 100;

/** Dates and Buffers survive JSON as tagged objects. */
function replacer(key, value) {
  const raw = this[key];
  if (raw instanceof Date) return { $date: raw.toISOString() };
  if (Buffer.isBuffer(raw)) return { $base64: raw.toString('base64') };
  return value;
}

function reviver(_key, value) {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    if (typeof value.$date === 'string' && Object.keys(value).length === 1) return new Date(value.$date);
    if (typeof value.$base64 === 'string' && Object.keys(value).length === 1) return Buffer.from(value.$base64, 'base64');
  }
  return value;
}

/**
 * @param {{ dir: string, store: any, versioning: { snapshot(ref: (obj: any) => number): unknown, restore(state: any, obj: (ref: number) => any): void } }} deps
 */
export function createPersistence({ dir, store, versioning }) {
  const blobs = join(dir, BLOBS);
  mkdirSync(blobs, { recursive: true });
  /** object -> the blob holding its bytes */
  const files = new WeakMap();
  let nextBlob = 1;
  let timer;
  let writing = Promise.resolve();
  let dirty = false;

  /** An object whose bytes are read from its blob on first use. */
  function lazyObject(fields, blob) {
    const obj = { ...fields };
    let body;
    Object.defineProperty(obj, 'body', {
      enumerable: true,
      configurable: true,
      get: () => (body ??= readFileSync(join(blobs, blob))),
    });
    files.set(obj, blob);
    return obj;
  }

  /** Reads state.json, when there is one, into the store and the versioning state. */
  function load() {
    const file = join(dir, STATE);
    if (!existsSync(file)) return { buckets: 0, objects: 0 };
    const state = JSON.parse(readFileSync(file, 'utf8'), reviver);
    if (state.format !== FORMAT) throw new Error(`${file}: format ${state.format}, this server reads format ${FORMAT}`);
    nextBlob = state.nextBlob;
    const objects = state.objects.map(({ blob, ...fields }) => lazyObject(fields, blob));
    for (const { name, created, keys } of state.buckets) {
      store.buckets.set(name, new Map(keys.map(([key, ref]) => [key, objects[ref]])));
      store.bucketCreationDates.set(name, created);
    }
    versioning.restore(state.versioning, (ref) => objects[ref]);
    return { buckets: state.buckets.length, objects: objects.length };
  }

  /** One consistent picture of the state, taken synchronously: objects by reference. */
  function collect() {
    const ids = new Map();
    const objects = [];
    const ref = (obj) => {
      let id = ids.get(obj);
      if (id === undefined) {
        id = objects.length;
        ids.set(obj, id);
        objects.push(obj);
      }
      return id;
    };
    const buckets = [...store.buckets].map(([name, keys]) => ({
      name,
      created: store.bucketCreationDates.get(name) ?? new Date(),
      keys: [...keys].map(([key, obj]) => [key, ref(obj)]),
    }));
    return { objects, buckets, versioning: versioning.snapshot(ref) };
  }

  async function write() {
    const { objects, buckets, versioning: versions } = collect();
    const entries = [];
    for (const obj of objects) {
      let blob = files.get(obj);
      if (!blob) {
        blob = String(nextBlob++);
        const path = join(blobs, blob);
        await writeFile(`${path}.tmp`, obj.body);
        await rename(`${path}.tmp`, path);
        files.set(obj, blob);
      }
      const fields = {};
      for (const name of Object.keys(obj)) if (name !== 'body') fields[name] = obj[name];
      entries.push({ ...fields, blob });
    }
    const path = join(dir, STATE);
    await writeFile(`${path}.tmp`, JSON.stringify({ format: FORMAT, nextBlob, objects: entries, buckets, versioning: versions }, replacer));
    await rename(`${path}.tmp`, path);
    const live = new Set(entries.map((entry) => entry.blob));
    for (const name of await readdir(blobs)) {
      if (!live.has(name) && !name.endsWith('.tmp')) await unlink(join(blobs, name)).catch(() => undefined);
    }
  }

  /** Writes now (after a write in progress), whatever the debounce. */
  function flush() {
    clearTimeout(timer);
    timer = undefined;
    dirty = false;
    writing = writing.then(write, write);
    return writing;
  }

  return {
    load,
    flush,
    /** Something changed: write it soon. */
    changed() {
      dirty = true;
      if (timer) return;
      timer = setTimeout(() => {
        timer = undefined;
        if (dirty) flush().catch((error) => process.stderr.write(`local S3: writing ${dir} failed: ${error.message}\n`));
      }, DEBOUNCE_MS);
    },
  };
}
