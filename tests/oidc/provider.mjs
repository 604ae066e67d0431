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
  console.error('usage: node provider.mjs PORT [NODE_CALLBACK_URL]');
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

// People sign in through the node's login client, whose callback is the optional second argument.
// The development login form accepts any user; roles follow the login name: `coordinator-anna` is a
// coordinator, `analyst-bo` an analyst.
const nodeCallback = process.argv[3];
const login = nodeCallback
  ? [{
      client_id: 'lagesbild-node',
      client_secret: 'lagesbild-node-secret',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: [nodeCallback],
      token_endpoint_auth_method: 'client_secret_basic',
    }]
  : [];
const ROLE_NAMES = ['reporter', 'coordinator', 'analyst', 'agreement-admin', 'node-admin'];
const rolesOf = (login) => ROLE_NAMES.filter((role) => login.startsWith(`${role}-`));

const clients = [
  ...login,
  system('reporter-app', ['reporter']),
  system('other-reporter-app', ['reporter']),
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
  findAccount: async (ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id, roles: rolesOf(id) }),
  }),
  claims: { openid: ['sub'], roles: ['roles'] },
  scopes: ['openid', 'roles', 'api'],
  // Put the roles in the ID token itself, where the node reads them.
  conformIdTokenClaims: false,
  features: {
    clientCredentials: { enabled: true },
    devInteractions: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      // urn:other:api stands for another service of the same organisation: its tokens are valid,
      // but not for lagesbild.
      getResourceServerInfo: (ctx, resourceIndicator, client) => ({
        scope: 'api',
        audience: resourceIndicator === 'urn:other:api' ? 'other-api' : 'lagesbild-api',
        accessTokenTTL: 3600,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: client.token_alg || 'ES256' } },
      }),
    },
  },
  extraTokenClaims: async (ctx, token) => {
    if (token.kind !== 'ClientCredentials') return undefined;
    const client = await ctx.oidc.provider.Client.find(token.clientId);
    return { roles: client?.roles ?? [] };
  },
});

provider.listen(port, '127.0.0.1', () => console.log(`READY ${issuer}`));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
