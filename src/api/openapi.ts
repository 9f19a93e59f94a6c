import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';

const isZod = (value: unknown): value is z.ZodType => value instanceof z.ZodType;

/** A zod schema as the JSON Schema of an OpenAPI 3.0 document: what the request is checked against. */
function jsonSchemaOf(schema: z.ZodType): Record<string, unknown> {
  return z.toJSONSchema(schema, {
    io: 'input',
    target: 'openapi-3.0',
    unrepresentable: 'any',
  }) as Record<string, unknown>;
}

const SCHEMA_PARTS = ['body', 'querystring', 'params', 'headers'] as const;

const idempotencyHeader = z.object({
  'idempotency-key': z
    .string()
    .min(1)
    .max(255)
    .optional()
    .describe(
      'Makes a retry safe: the same key with the same body answers as the first time (for 24 h); ' +
        'the same key with another body is 422.',
    ),
});

/** Routes that take a catalog streamed as CSV or JSON Lines besides a JSON body. */
export const CATALOG_ROUTES = ['/v1/batches', '/v1/batches/estimate'];

type OpenApiDocument = {
  paths?: Record<string, Record<string, { requestBody?: { content?: Record<string, unknown> } }>>;
};

/** Adds the catalog content types to the routes that stream them (the JSON body is zod's). */
function documentCatalogBodies(document: OpenApiDocument): void {
  for (const path of CATALOG_ROUTES) {
    const content = document.paths?.[path]?.post?.requestBody?.content;
    if (!content) continue;
    content['text/csv'] = {
      schema: {
        type: 'string',
        description: 'A CSV catalog with a header row; options in the query.',
      },
    };
    content['application/x-ndjson'] = {
      schema: {
        type: 'string',
        description:
          'JSON Lines: catalog rows, or the lines of an OpenAI Batch API input file; options in the query.',
      },
    };
  }
}

/**
 * Serves the OpenAPI document at `/openapi.json` and a reference page at `/docs`. Routes
 * declare the zod schemas their handlers validate with (`schema.body`, `schema.querystring` …);
 * the document is generated from those very schemas, so it cannot drift from what is checked.
 * Register before any route: the generator sees only routes added after it.
 */
export async function registerOpenApi(app: FastifyInstance, version: string): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'rendermill',
        version,
        description:
          'Batch image rendering: tier-aware, budget-capped, paid once per image, stored in S3. ' +
          'Every /v1 route needs `Authorization: Bearer <key>`; a tenant sees only its own ' +
          'batches, manifests, images and schedules. Every POST accepts an `Idempotency-Key`.',
      },
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      },
      security: [{ bearer: [] }],
    },
    transform: ({ schema, url, route }) => {
      if (!schema) return { schema, url };
      const converted: Record<string, unknown> = { ...schema };
      const methods = [route.method].flat();
      if (methods.includes('POST') && url.startsWith('/v1/') && !schema.headers) {
        converted.headers = jsonSchemaOf(idempotencyHeader);
      }
      for (const part of SCHEMA_PARTS) {
        const value = schema[part];
        if (isZod(value)) converted[part] = jsonSchemaOf(value);
      }
      const response = schema.response as Record<string, unknown> | undefined;
      if (response) {
        converted.response = Object.fromEntries(
          Object.entries(response).map(([code, value]) => [
            code,
            isZod(value) ? jsonSchemaOf(value) : value,
          ]),
        );
      }
      return { schema: converted as typeof schema, url };
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.addHook('onReady', async () => documentCatalogBodies(app.swagger() as OpenApiDocument));
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
