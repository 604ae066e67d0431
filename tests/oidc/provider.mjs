// A real OpenID Connect provider for lagesbild's tests (the npm package oidc-provider). The test
// harness starts it as `node provider.mjs PORT` and reads "READY <issuer>" from its output; it exits
// when its standard input closes, so it never outlives the tests that started it.
//
// Clients use the client credentials grant, as systems calling a node do, and get JWT access tokens
// for the resource urn:lagesbild:api with the roles of their client in a `roles` claim. Each start
// makes new signing keys (ES256 and RS256), so no key is ever shared between runs.
import Provider from 'oidc-provider';
import * as jose from 'jose';

const port = Number(process.argv[2]);
if (!port) {
  console.error('usage: node provider.mjs PORT');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;
const RESOURCE = 'urn:lagesbild:api';

async function signingKey(alg, kid) {
  const { privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  return { ...(await jose.exportJWK(privateKey)), kid, alg, use: 'sig' };
}

const system = (id, roles, alg = 'ES256') => ({
  client_id: id,
  client_secret: `${id}-secret`,
  grant_types: ['client_credentials'],
  redirect_uris: [],
  response_types: [],
  token_endpoint_auth_method: 'client_secret_basic',
  roles,
  token_alg: alg,
});

const clients = [
  system('reporter-app', ['reporter']),
  system('coordinator-app', ['coordinator']),
  system('analyst-app', ['analyst']),
  system('agreement-admin-app', ['agreement-admin']),
  system('node-admin-app', ['node-admin']),
  system('everything-app', ['reporter', 'coordinator', 'analyst', 'agreement-admin', 'node-admin'], 'RS256'),
  system('no-roles-app', []),
];

const provider = new Provider(issuer, {
  clients,
  // New key ids every start, so a restarted provider looks like a provider that rotated its keys.
  jwks: { keys: [await signingKey('ES256', `es-${Date.now()}`), await signingKey('RS256', `rs-${Date.now()}`)] },
  extraClientMetadata: { properties: ['roles', 'token_alg'] },
  features: {
    clientCredentials: { enabled: true },
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resourceIndicator, client) => ({
        scope: 'api',
        audience: 'lagesbild-api',
        accessTokenTTL: 3600,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: client.token_alg || 'ES256' } },
      }),
    },
  },
  extraTokenClaims: async (ctx, token) => {
    const client = await ctx.oidc.provider.Client.find(token.clientId);
    return { roles: client?.roles ?? [] };
  },
});

provider.listen(port, '127.0.0.1', () => console.log(`READY ${issuer}`));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
