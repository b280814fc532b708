import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { SEARCH_ATTRIBUTE_TYPES } from '../../contracts/search-attributes.js';

// No Docker engine runs in CI, so these checks catch what `docker compose up` would otherwise find first.
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const read = (file: string) => fs.readFileSync(path.join(root, file), 'utf8');

interface Service {
  image?: string;
  build?: unknown;
  volumes?: (string | { type?: string; source?: string })[];
  depends_on?: string[] | Record<string, unknown>;
  environment?: Record<string, string> | string[];
  ports?: (string | { published?: string | number; host_ip?: string; target?: number })[];
}
const compose = parse(read('docker-compose.yml'), { merge: true }) as {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
};
const services = Object.entries(compose.services);

/** A reference is pinned by a digest, or by a tag other than `latest`. */
function isPinned(image: string): boolean {
  if (image.includes('@sha256:')) return true;
  const name = image.slice(image.lastIndexOf('/') + 1);
  const tag = name.includes(':') ? name.slice(name.indexOf(':') + 1) : '';
  return tag !== '' && tag !== 'latest' && !tag.includes('${');
}

/** Host sides of bind mounts, short (`./a:/b:ro`) or long (`type: bind`) syntax; named volumes are skipped. */
function bindSources(service: Service): string[] {
  return (service.volumes ?? []).flatMap((volume) => {
    if (typeof volume === 'string') {
      const source = volume.split(':')[0] ?? '';
      return source.startsWith('.') || source.startsWith('/') ? [source] : [];
    }
    return volume.type === 'bind' && volume.source ? [volume.source] : [];
  });
}

describe('docker-compose.yml', () => {
  it('tells pinned image references from floating ones', () => {
    for (const image of ['redis:7.4.1-alpine', 'localhost:5000/team/app:1.2', 'node@sha256:abc']) {
      expect(isPinned(image), image).toBe(true);
    }
    for (const image of ['redis', 'redis:latest', 'localhost:5000/team/app', 'app:${TAG}']) {
      expect(isPinned(image), image).toBe(false);
    }
  });

  it('defines the whole stack', () => {
    expect(Object.keys(compose.services).sort()).toEqual(
      [
        'api',
        'grafana',
        'jaeger',
        'postgres',
        'prometheus',
        'qdrant',
        'redis',
        'temporal',
        'temporal-setup',
        'temporal-ui',
        'worker',
      ].sort(),
    );
  });

  it.each(services)('pins the image of %s', (_name, service) => {
    expect(service.image !== undefined || service.build !== undefined).toBe(true);
    if (service.image !== undefined) expect(isPinned(service.image), service.image).toBe(true);
  });

  it.each(services)('bind-mounts only files of the repository into %s', (_name, service) => {
    for (const source of bindSources(service)) {
      expect(path.isAbsolute(source), `${source} must be relative to the repository`).toBe(false);
      expect(fs.existsSync(path.join(root, source)), `${source} does not exist`).toBe(true);
    }
  });

  it('declares every named volume and depends only on defined services', () => {
    const declared = Object.keys(compose.volumes ?? {});
    for (const [name, service] of services) {
      for (const volume of service.volumes ?? []) {
        if (typeof volume !== 'string') continue;
        const source = volume.split(':')[0] ?? '';
        if (!source.startsWith('.') && !source.startsWith('/'))
          expect(declared, `${name}: ${source}`).toContain(source);
      }
      const dependencies = Array.isArray(service.depends_on)
        ? service.depends_on
        : Object.keys(service.depends_on ?? {});
      for (const dependency of dependencies) expect(Object.keys(compose.services), name).toContain(dependency);
    }
  });

  it('points the worker and API at the stack', () => {
    for (const name of ['worker', 'api']) {
      const env = compose.services[name]?.environment as Record<string, string>;
      expect(env).toMatchObject({
        TEMPORAL_ADDRESS: 'temporal:7233',
        REDIS_URL: 'redis://redis:6379',
        QDRANT_URL: 'http://qdrant:6333',
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://jaeger:4318',
      });
    }
  });

  it('publishes only what users open, on loopback unless RAGLINE_BIND_ADDRESS widens it', () => {
    const published: Record<string, string[]> = {};
    for (const [name, service] of services) {
      for (const port of service.ports ?? []) {
        expect(typeof port, `${name}: use the short syntax with a host address`).toBe('string');
        const spec = String(port);
        // host:published:target, the host address first; a bare "3000:3000" would listen on every interface.
        expect(spec, `${name} publishes ${spec}`).toMatch(/^\$\{RAGLINE_BIND_ADDRESS:-127\.0\.0\.1\}:\d+:\d+$/);
        (published[name] ??= []).push(spec.split(':').at(-2) ?? '');
      }
    }
    expect(published).toEqual({
      api: ['8080'],
      'temporal-ui': ['8233'],
      prometheus: ['9090'],
      grafana: ['3000'],
      jaeger: ['16686', '4318'],
    });
  });

  it('takes every password from the env file, with no default to fall back on', () => {
    const secrets = {
      postgres: ['POSTGRES_PASSWORD'],
      temporal: ['POSTGRES_PWD'],
      grafana: ['GF_SECURITY_ADMIN_PASSWORD'],
    };
    for (const [name, variables] of Object.entries(secrets)) {
      const env = compose.services[name]?.environment as Record<string, string>;
      for (const variable of variables) {
        // ${VAR:?message}: compose stops with the message when .env leaves it unset or empty.
        expect(env[variable], `${name}.${variable}`).toMatch(/^\$\{[A-Z_]+:\?[^}]+\}$/);
      }
    }
    for (const [name, service] of services) {
      for (const [variable, value] of Object.entries((service.environment ?? {}) as Record<string, string>)) {
        if (/PASSWORD|PWD|SECRET|TOKEN/.test(variable)) expect(String(value), `${name}.${variable}`).not.toMatch(/:-/);
      }
    }
    const example = read('ops/compose.env.example');
    for (const variable of ['POSTGRES_PASSWORD', 'GRAFANA_ADMIN_PASSWORD', 'RAGLINE_BIND_ADDRESS'])
      expect(example).toMatch(new RegExp(`^${variable}=`, 'm'));
    expect(read('.gitignore').split('\n')).toContain('.env');
  });

  it('tells users in the README how the stack is exposed and where its secrets go', () => {
    const readme = read('README.md');
    expect(readme).toContain('ops/compose.env.example');
    expect(readme).toContain('RAGLINE_BIND_ADDRESS');
    expect(readme).toMatch(/127\.0\.0\.1/);
  });

  it('has Prometheus scrape only hosts the stack defines', () => {
    const prometheus = parse(read('ops/prometheus/prometheus.yml')) as {
      scrape_configs: { static_configs: { targets: string[] }[] }[];
    };
    const hosts = prometheus.scrape_configs.flatMap((job) =>
      job.static_configs.flatMap((config) => config.targets.map((target) => target.split(':')[0])),
    );
    for (const host of hosts) expect([...Object.keys(compose.services), 'localhost']).toContain(host);
  });

  it('registers every search attribute the workflows set', () => {
    const script = read('ops/temporal/create-search-attributes.sh');
    for (const [name, type] of Object.entries(SEARCH_ATTRIBUTE_TYPES)) expect(script).toContain(`${name}:${type}`);
  });
});

describe('Dockerfile', () => {
  it('builds from pinned Node 20 bookworm-slim images', () => {
    const bases = [...read('Dockerfile').matchAll(/^FROM\s+(\S+)/gm)].map((match) => match[1] ?? '');
    expect(bases.length).toBeGreaterThan(0);
    for (const base of bases) {
      expect(base).toMatch(/^node:20\.\d+\.\d+-bookworm-slim$/);
      expect(isPinned(base)).toBe(true);
    }
  });

  it('keeps local state and secrets out of the build context', () => {
    const ignored = read('.dockerignore').split('\n');
    for (const entry of ['node_modules', '.git', '.data', '.env']) expect(ignored).toContain(entry);
  });
});
