#!/usr/bin/env node
// Checks responses captured from the running service against openapi.json.
//
// Usage: node validate-responses.mjs RESPONSES.jsonl [OPENAPI.json]
//
// Each line of RESPONSES.jsonl is one response, written by the integration
// tests:
//   {"operationId": "createOrder", "status": 201,
//    "contentType": "application/json", "headers": {"location": "..."},
//    "body": <the parsed JSON body, or null when there was none>}
//
// For each line the documented response is the operation's entry for that
// exact status, else its "default" entry; a status documented by neither is
// a mismatch.  Then:
//   - the media type (parameters such as charset ignored) must be one the
//     response documents, and the body must validate against its schema;
//   - a response documented without content must have no body;
//   - every header documented as required must be present (names compared
//     case-insensitively) and match its schema.
// Every mismatch is listed; the exit status is 1 if there was any (or the
// input was unusable), 0 otherwise.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { schemaCompiler, deref } from './lib/schemas.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const NAME = 'validate-responses';

if (!process.argv[2]) {
  console.error(`usage: ${NAME}.mjs RESPONSES.jsonl [OPENAPI.json]`);
  process.exit(2);
}
const inputFile = resolve(process.argv[2]);
const specFile = resolve(process.argv[3] ?? resolve(here, '../../openapi.json'));

let spec;
let lines;
try {
  spec = JSON.parse(readFileSync(specFile, 'utf8'));
  lines = readFileSync(inputFile, 'utf8').split('\n');
} catch (err) {
  console.error(`${NAME}: ${err.message}`);
  process.exit(1);
}

const dialect = /^3\.[1-9]/.test(spec.openapi ?? '') ? '2020-12' : 'draft-07';
const compiler = schemaCompiler(spec, dialect);

// operationId -> { method, path, operation }
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const operations = new Map();
for (const [path, item] of Object.entries(spec.paths ?? {})) {
  for (const method of METHODS) {
    const op = item[method];
    if (op?.operationId) operations.set(op.operationId, { method, path, operation: op });
  }
}

// Compiled validators, by a key naming where the schema sits in the spec.
const validators = new Map();
function validatorFor(key, schema) {
  if (!validators.has(key)) validators.set(key, compiler.compile(schema));
  return validators.get(key);
}

const mediaType = (value) => String(value ?? '').split(';')[0].trim().toLowerCase();

function headerValue(headers, name) {
  const want = name.toLowerCase();
  for (const [k, v] of Object.entries(headers ?? {})) {
    if (k.toLowerCase() === want) return Array.isArray(v) ? v.join(', ') : String(v);
  }
  return undefined;
}

// A header's wire value is text; a header schema may say integer/number.
function headerData(value, schema) {
  const t = schema?.type;
  if ((t === 'integer' || t === 'number') && /^-?[0-9]+(\.[0-9]+)?$/.test(value)) return Number(value);
  return value;
}

function check(rec) {
  const problems = [];
  const entry = operations.get(rec.operationId);
  if (!entry) return [`operationId ${JSON.stringify(rec.operationId)} is not in the spec`];
  const statusKey = String(rec.status);
  let responseKey = statusKey;
  let response = entry.operation.responses?.[statusKey];
  if (response === undefined) {
    // OpenAPI also allows range keys such as "4XX".
    responseKey = `${statusKey[0]}XX`;
    response = entry.operation.responses?.[responseKey];
  }
  if (response === undefined) {
    responseKey = 'default';
    response = entry.operation.responses?.default;
  }
  if (response === undefined) return [`status ${statusKey} is not documented`];
  response = deref(spec, response);
  const where = `${rec.operationId} ${responseKey}`;

  const content = response.content ?? {};
  const documented = Object.keys(content);
  const headers = rec.headers ?? {};
  const actualType = mediaType(rec.contentType ?? headerValue(headers, 'content-type'));
  const hasBody = rec.body !== undefined && rec.body !== null;

  if (documented.length === 0) {
    if (hasBody) problems.push(`documented without a body, got ${actualType || 'a body'}`);
  } else {
    const key = documented.find((t) => mediaType(t) === actualType);
    if (key === undefined) {
      problems.push(`content type ${JSON.stringify(actualType)} is not documented (expected ${documented.join(' or ')})`);
    } else if (!hasBody) {
      problems.push(`no body, expected ${key}`);
    } else {
      const media = deref(spec, content[key]);
      if (media.schema !== undefined) {
        const validate = validatorFor(`${where} ${key}`, media.schema);
        if (!validate(rec.body)) problems.push(`body: ${compiler.errorsText(validate.errors)}`);
      }
    }
  }

  for (const [name, h] of Object.entries(response.headers ?? {})) {
    const header = deref(spec, h);
    const value = headerValue(headers, name);
    if (value === undefined) {
      if (header.required) problems.push(`required header ${name} is missing`);
      continue;
    }
    if (header.schema !== undefined) {
      const validate = validatorFor(`${where} header ${name}`, header.schema);
      if (!validate(headerData(value, deref(spec, header.schema)))) {
        problems.push(`header ${name}: ${JSON.stringify(value)} ${compiler.errorsText(validate.errors)}`);
      }
    }
  }
  return problems.map((p) => `${where}: ${p}`);
}

let checked = 0;
let mismatches = 0;
lines.forEach((line, i) => {
  if (line.trim() === '') return;
  const at = `${inputFile}:${i + 1}`;
  let rec;
  try {
    rec = JSON.parse(line);
  } catch (err) {
    console.log(`${at}: not JSON: ${err.message}`);
    mismatches++;
    return;
  }
  checked++;
  if (rec === null || typeof rec !== 'object' || typeof rec.operationId !== 'string' || !Number.isInteger(rec.status)) {
    console.log(`${at}: needs a string "operationId" and an integer "status"`);
    mismatches++;
    return;
  }
  let problems;
  try {
    problems = check(rec);
  } catch (err) {
    problems = [`cannot check: ${err.message}`];
  }
  for (const p of problems) console.log(`${at}: ${p}`);
  if (problems.length) mismatches++;
});

if (checked === 0) console.log(`${inputFile}: no responses to check`);
console.log(`${NAME}: ${checked} responses checked, ${mismatches} mismatches`);
process.exit(mismatches > 0 || checked === 0 ? 1 : 0);
