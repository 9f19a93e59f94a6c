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
    transform: ({ schema, url }) => {
      if (!schema) return { schema, url };
      const converted: Record<string, unknown> = { ...schema };
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
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
