#!/usr/bin/env node
// Checks events captured from a sink (EVENT_SINK=file:PATH, JSON Lines)
// against asyncapi.json.
//
// Usage: node validate-events.mjs EVENTS.jsonl [ASYNCAPI.json]
//
// Each line must be one CloudEvent whose `type` names a message of the
// document (the message `name`, e.g. "order.created") and whose whole
// envelope validates against that message's payload schema.  Lines with the
// same `id` are redeliveries and must be identical.  Every mismatch is
// listed; exit status 1 if there was any (or no event at all), 0 otherwise.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { schemaCompiler, deref } from './lib/schemas.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const NAME = 'validate-events';
if (!process.argv[2]) {
  console.error(`usage: ${NAME}.mjs EVENTS.jsonl [ASYNCAPI.json]`);
  process.exit(2);
}
const inputFile = resolve(process.argv[2]);
const specFile = resolve(process.argv[3] ?? resolve(here, '../../asyncapi.json'));

let spec;
let lines;
try {
  spec = JSON.parse(readFileSync(specFile, 'utf8'));
  lines = readFileSync(inputFile, 'utf8').split('\n');
} catch (err) {
  console.error(`${NAME}: ${err.message}`);
  process.exit(1);
}

const compiler = schemaCompiler(spec, 'draft-07');
const byType = new Map();
for (const m of Object.values(spec.components?.messages ?? {})) {
  const msg = deref(spec, m);
  if (msg.name && msg.payload) byType.set(msg.name, compiler.compile(msg.payload));
}

const seen = new Map();
let checked = 0;
let mismatches = 0;
lines.forEach((line, i) => {
  if (line.trim() === '') return;
  const at = `${inputFile}:${i + 1}`;
  checked++;
  let event;
  try {
    event = JSON.parse(line);
  } catch (err) {
    console.log(`${at}: not JSON: ${err.message}`);
    mismatches++;
    return;
  }
  const validate = byType.get(event?.type);
  let problem;
  if (!validate) problem = `type ${JSON.stringify(event?.type)} is not a documented message`;
  else if (!validate(event)) problem = `${event.type}: ${compiler.errorsText(validate.errors)}`;
  else if (seen.has(event.id) && !isDeepStrictEqual(seen.get(event.id), event)) {
    problem = `id ${event.id} was delivered before with different content`;
  }
  if (event && typeof event === 'object' && !seen.has(event.id)) seen.set(event.id, event);
  if (problem) {
    console.log(`${at}: ${problem}`);
    mismatches++;
  }
});

if (checked === 0) console.log(`${inputFile}: no events to check`);
console.log(`${NAME}: ${checked} events checked (${seen.size} distinct ids), ${mismatches} mismatches`);
process.exit(mismatches > 0 || checked === 0 ? 1 : 0);
