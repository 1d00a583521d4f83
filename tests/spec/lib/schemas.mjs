// Compiling schemas that live inside an OpenAPI or AsyncAPI document.
//
// The documents refer to their schemas with local JSON pointers
// ("#/components/schemas/Order").  Ajv resolves a $ref against the schema
// being compiled, not against the document around it, so each component
// schema is registered under an absolute URI of its own and every local
// $ref is rewritten to that URI.  Only references into components/schemas
// are supported; anything else is reported as an error rather than guessed.
import Ajv2020 from 'ajv/dist/2020.js';
import Ajv07 from 'ajv';
import addFormats from 'ajv-formats';

const PREFIX = '#/components/schemas/';

// Keywords whose value is a map from names to schemas, and keywords whose
// value is data, not a schema (a property may be called "const").
const SCHEMA_MAPS = new Set(['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas']);
const DATA = new Set(['examples', 'example', 'default', 'const', 'enum']);

function rewriteRefs(node, base) {
  if (Array.isArray(node)) return node.map((n) => rewriteRefs(n, base));
  if (node === null || typeof node !== 'object') return node;
  const out = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === '$ref' && typeof value === 'string' && value.startsWith('#')) {
      if (!value.startsWith(PREFIX)) throw new Error(`unsupported $ref ${value}`);
      const [name, ...rest] = value.slice(PREFIX.length).split('/');
      out.$ref = `${base}/components/schemas/${name}` + (rest.length ? `#/${rest.join('/')}` : '');
    } else if (DATA.has(key)) {
      out[key] = value;
    } else if (SCHEMA_MAPS.has(key) && value && typeof value === 'object') {
      out[key] = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, rewriteRefs(v, base)]));
    } else {
      out[key] = rewriteRefs(value, base);
    }
  }
  return out;
}

// Returns { compile(schema) } for schemas of doc.  dialect: '2020-12' for
// OpenAPI 3.1, 'draft-07' for OpenAPI 3.0 and AsyncAPI.
export function schemaCompiler(doc, dialect, base = 'https://spec.invalid/doc') {
  const AjvClass = dialect === '2020-12' ? Ajv2020 : Ajv07;
  const ajv = new AjvClass({ allErrors: true, strict: true, strictTypes: false });
  addFormats(ajv);
  // OpenAPI/AsyncAPI annotation keywords that are not JSON Schema keywords.
  for (const kw of ['example', 'xml', 'externalDocs', 'discriminator']) ajv.addKeyword(kw);
  for (const [name, schema] of Object.entries(doc.components?.schemas ?? {})) {
    ajv.addSchema({ ...rewriteRefs(schema, base), $id: `${base}/components/schemas/${name}` });
  }
  return {
    compile: (schema) => ajv.compile(rewriteRefs(schema, base)),
    errorsText: (errors) =>
      (errors ?? [])
        .map((e) => {
          const p = e.params ?? {};
          const extra =
            p.allowedValues !== undefined ? ` ${JSON.stringify(p.allowedValues)}`
            : p.allowedValue !== undefined ? ` ${JSON.stringify(p.allowedValue)}`
            : p.additionalProperty !== undefined ? ` (${p.additionalProperty})`
            : '';
          return `${e.instancePath || '(root)'} ${e.message}${extra}`;
        })
        .join('; '),
  };
}

// Follows a local $ref chain ("#/components/responses/NotFound") in doc.
export function deref(doc, node) {
  const seen = new Set();
  while (node && typeof node === 'object' && typeof node.$ref === 'string') {
    if (seen.has(node.$ref)) throw new Error(`$ref cycle at ${node.$ref}`);
    seen.add(node.$ref);
    if (!node.$ref.startsWith('#/')) throw new Error(`unsupported $ref ${node.$ref}`);
    node = node.$ref
      .slice(2)
      .split('/')
      .map((s) => decodeURIComponent(s).replace(/~1/g, '/').replace(/~0/g, '~'))
      .reduce((cur, key) => (cur === undefined ? undefined : cur[key]), doc);
    if (node === undefined) throw new Error(`dangling $ref ${[...seen].pop()}`);
  }
  return node;
}
