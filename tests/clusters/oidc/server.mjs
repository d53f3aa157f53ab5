// A local OpenID provider for Canopy's sign-in tests: panva's certified oidc-provider with its own
// small sign-in and consent pages (the library's development pages load web fonts from the internet).
// Configured by one JSON argument: {port, issuer, client: {id, secret, redirect_uri}, accounts:
// {name: {password, email, given_name, family_name, groups}}, cookie_key}. Prints "ready" when listening.
import { Provider } from 'oidc-provider';

const config = JSON.parse(process.argv[2]);
const accounts = config.accounts;

const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
// No icon (href="data:,"): otherwise the browser asks for /favicon.ico, a 404 logged as a console error.
const page = (title, body) => `<!doctype html><html lang="en"><head><meta charset="utf-8">
<link rel="icon" href="data:,"><title>${escape(title)}</title></head><body><h1>${escape(title)}</h1>${body}</body></html>`;

const provider = new Provider(config.issuer, {
  clients: [{
    client_id: config.client.id,
    client_secret: config.client.secret,
    redirect_uris: [config.client.redirect_uri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  scopes: ['openid', 'email', 'profile', 'groups'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['preferred_username', 'given_name', 'family_name', 'name'],
    groups: ['groups'],
  },
  async findAccount(ctx, id) {
    const account = accounts[id];
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          preferred_username: id,
          email: account.email,
          email_verified: true,
          given_name: account.given_name,
          family_name: account.family_name,
          name: `${account.given_name} ${account.family_name}`,
          groups: account.groups,
        };
      },
    };
  },
  cookies: { keys: [config.cookie_key] },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  ttl: { Session: 600, Interaction: 600, Grant: 600, AccessToken: 600, IdToken: 600, AuthorizationCode: 60 },
});

async function formBody(req) {
  let raw = '';
  for await (const chunk of req) raw += chunk;
  return Object.fromEntries(new URLSearchParams(raw));
}

function loginPage(uid, error = '') {
  return page('Sign in to the test identity provider', `${error ? `<p role="alert">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${uid}/login">
<label>User name <input name="login" id="login" required autofocus></label>
<label>Password <input type="password" name="password" id="password" required></label>
<button type="submit">Sign in</button></form>`);
}

provider.use(async (ctx, next) => {
  const match = ctx.path.match(/^\/interaction\/([^/]+)(\/login|\/confirm)?$/);
  if (!match) return next();
  const [, uid, action] = match;
  ctx.set('cache-control', 'no-store');
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  if (details.uid !== uid) ctx.throw(400, 'interaction mismatch');
  const { prompt, params, session, grantId } = details;

  if (ctx.method === 'GET' && !action) {
    ctx.type = 'html';
    if (prompt.name === 'login') {
      ctx.body = loginPage(uid);
    } else {
      const scopes = (prompt.details.missingOIDCScope || []).map(escape).join(', ');
      ctx.body = page('Allow access', `<p>${escape(params.client_id)} asks for: ${scopes}</p>
<form method="post" action="/interaction/${uid}/confirm"><button type="submit">Allow</button></form>`);
    }
    return undefined;
  }
  if (ctx.method === 'POST' && action === '/login') {
    const body = await formBody(ctx.req);
    const account = accounts[body.login];
    if (!account || account.password !== body.password) {
      ctx.type = 'html';
      ctx.body = loginPage(uid, 'Wrong user name or password.');
      return undefined;
    }
    return provider.interactionFinished(ctx.req, ctx.res, { login: { accountId: body.login } }, {
      mergeWithLastSubmission: false,
    });
  }
  if (ctx.method === 'POST' && action === '/confirm') {
    const grant = grantId
      ? await provider.Grant.find(grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    const saved = await grant.save();
    return provider.interactionFinished(ctx.req, ctx.res, { consent: { grantId: saved } }, {
      mergeWithLastSubmission: true,
    });
  }
  return ctx.throw(405);
});

const server = provider.listen(config.port, '127.0.0.1', () => console.log('ready'));
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
