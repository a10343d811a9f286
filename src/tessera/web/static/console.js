// Tessera admin console: a first-party public app. It signs the administrator in with our own
// authorization code flow and PKCE (RFC 7636), keeps the token in memory (sessionStorage for
// the PKCE state only), and calls the admin API with it. Data is rendered with textContent
// only: nothing from the server is ever parsed as HTML.
"use strict";

// Which identity domain this console is for: the page says (web/console.py). Each domain has
// its own console app, redirect and URLs under its prefix ('' for the default domain and for a
// domain on a host of its own; docs/domains.md).
const PAGE = document.body.dataset;
const PREFIX = PAGE.prefix;
const CLIENT_ID = PAGE.clientId;
const IS_DEFAULT = PAGE.default === "true";
const ADMIN_SCOPE = "urn:tessera:admin";
const OPERATOR_SCOPE = "urn:tessera:operator";
// sessionStorage is shared by every console of this origin: the keys name this console's app,
// so two domains' consoles in one browser never read each other's state.
const STORE_KEY = `tessera.console.${CLIENT_ID}`;
let config = null;
let redirectUri = null;
let token = null;
// Whether the token carries the operator scope (default domain only): domains page and picker.
let operator = false;
// The domain an operator picked: its name, display name and admin API path on this origin.
// null: this console's own domain.
let target = null;

function b64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(n) {
  const bytes = new Uint8Array(n);
  crypto.getRandomValues(bytes);
  return b64url(bytes);
}

function jwtClaims(jwt) {
  const text = atob(jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"));
  return JSON.parse(new TextDecoder().decode(Uint8Array.from(text, (c) => c.charCodeAt(0))));
}

async function discover() {
  const response = await fetch(PREFIX + "/.well-known/openid-configuration");
  config = await response.json();
  redirectUri = config.issuer + "/console/";  // the console app's registered redirect
}

function adminScope(issuer) { return `${issuer}/admin${ADMIN_SCOPE}`; }
function operatorScope(issuer) { return `${issuer}/admin${OPERATOR_SCOPE}`; }

async function signIn() {
  const verifier = randomString(48);
  const state = randomString(16);
  const challenge = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  sessionStorage.setItem(`${STORE_KEY}.pkce`, JSON.stringify({ verifier, state }));
  // In the default domain any administrator may hold the operator scope as well.
  const scopes = ["openid", "profile", adminScope(config.issuer)];
  if (IS_DEFAULT) scopes.push(operatorScope(config.issuer));
  const params = new URLSearchParams({
    response_type: "code", client_id: CLIENT_ID, redirect_uri: redirectUri,
    scope: scopes.join(" "), state,
    code_challenge: challenge, code_challenge_method: "S256",
  });
  location.assign(`${config.authorization_endpoint}?${params}`);
}

async function finishSignIn(query) {
  const saved = JSON.parse(sessionStorage.getItem(`${STORE_KEY}.pkce`) || "null");
  sessionStorage.removeItem(`${STORE_KEY}.pkce`);
  history.replaceState(null, "", location.pathname + (location.hash || "#/users"));
  if (query.get("error")) throw new Error(query.get("error_description") || query.get("error"));
  // RFC 9207: the response must come from our issuer; the state binds it to this browser.
  if (!saved || query.get("state") !== saved.state || query.get("iss") !== config.issuer) {
    throw new Error("The sign-in response does not match this browser's request. Try again.");
  }
  const body = new URLSearchParams({
    grant_type: "authorization_code", code: query.get("code"), redirect_uri: redirectUri,
    client_id: CLIENT_ID, code_verifier: saved.verifier,
  });
  const response = await fetch(config.token_endpoint, { method: "POST", body });
  const data = await response.json();
  if (!response.ok) throw new Error(data.error_description || data.error);
  token = data;
  const claims = jwtClaims(data.access_token);
  // The token response names scopes as requested (`<audience><scope>`), the token's claim by
  // their short name: either means the operator scope was granted.
  const granted = `${data.scope || ""} ${claims.scope || ""}`.split(" ");
  operator = IS_DEFAULT && (granted.includes(operatorScope(config.issuer)) || granted.includes(OPERATOR_SCOPE));
  document.getElementById("who").textContent = claims.user_displayname || claims.sub;
}

// The page being drawn (route()): a newer navigation aborts its reads, so a slow page never
// replaces the one the administrator has moved on to. null once drawn.
let drawing = null;

// `own`: the call is for this console's domain whatever the operator picked (the domains API).
async function api(method, path, body, own = false) {
  const picked = own ? null : target;
  // Only reads are given up: a write goes through whatever page the browser shows next.
  const signal = method === "GET" && drawing ? drawing.signal : undefined;
  const response = await fetch((picked ? picked.api : PREFIX + "/admin/v1") + path, {
    method, signal,
    headers: { Authorization: `Bearer ${token.access_token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  // Our own domain refusing our token: it expired or was revoked, so sign in again (the picked
  // domain stays picked). Another domain refusing a token that has not expired is an answer to
  // show: signing in again would not change it, and would loop.
  const expired = jwtClaims(token.access_token).exp * 1000 <= Date.now();
  if (response.status === 401 && (!picked || expired)) { token = null; await signIn(); throw new Error("Signing in again…"); }
  let data = null;
  if (response.status !== 204) {
    try { data = await response.json(); } catch { data = null; }
  }
  signal?.throwIfAborted();
  if (!response.ok) {
    // Every admin API error is an RFC 9457 problem: `detail` is meant for people. The domain
    // router answers an unknown or disabled domain with an OAuth-style error.
    const reason = (data && (data.detail || data.error_description || data.error)) || response.statusText;
    throw new Error(picked ? `${picked.display_name}: ${reason}` : reason);
  }
  return data;
}

// --- tiny DOM helpers --------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "onclick" || key === "onsubmit") node.addEventListener(key.slice(2), value);
    else if (value !== null && value !== undefined && value !== false) node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function table(headers, rows) {
  return el("table", { class: "data" },
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.length ? rows.map((r) => el("tr", {}, r.map((c) => el("td", {}, c))))
      : el("tr", {}, el("td", { colspan: headers.length, class: "muted" }, "Nothing here yet."))));
}

function button(label, onclick, kind = "secondary") {
  return el("button", { type: "button", class: `button button-${kind} btn-small`, onclick }, label);
}

function toast(message, error = false) {
  const box = document.getElementById("toast");
  box.textContent = message;
  box.className = error ? "toast error" : "toast";
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 5000);
}

function field(label, name, attrs = {}) {
  return el("label", {}, label, el("input", { name, ...attrs }));
}

function formValues(form) {
  return Object.fromEntries(new FormData(form).entries());
}

function lines(value) {
  return (value || "").split(/[\s,]+/).filter(Boolean);
}

function show(...nodes) {
  const main = document.getElementById("main");
  // An operator acting in a picked domain is told so above each of its pages.
  const acting = target && !(location.hash || "").startsWith("#/domains") ? el("p", { class: "acting", role: "note" },
    el("span", {}, "Operator in ", el("strong", {}, target.display_name), " ",
      el("span", { class: "muted mono" }, target.name), ": your changes are audited in that domain."),
    el("span", { class: "spacer" }),
    button("Back to Default", () => { pick(null); route(); })) : null;
  main.replaceChildren(...[acting, ...nodes].filter((n) => n !== null && n !== undefined));
  main.focus();
}

function when(iso) {
  if (!iso) return "–";
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

// Names for the ids the API returns: apps by client id, users by sub, resources by audience.
async function directory() {
  const [users, apps, resources] = await Promise.all([
    api("GET", "/users"), api("GET", "/apps"), api("GET", "/resources")]);
  const names = new Map([...users.map((u) => [u.id, u.username]), ...apps.map((a) => [a.client_id, a.name])]);
  return { users, apps, resources, names };
}

// An app's name (its client id in the tooltip); the raw id only when the app is gone.
function named(dir, id) {
  return id ? el("span", { title: id }, dir.names.get(id) || id) : "–";
}

// "Integration service: urn:…" for Oracle's long "<audience><scope>" form.
function scopeLabel(dir, scope) {
  for (const r of dir.resources) {
    if (scope.startsWith(r.audience) && r.scopes.includes(scope.slice(r.audience.length))) {
      return `${r.name}: ${scope.slice(r.audience.length)}`;
    }
  }
  return scope;
}

function scopeList(dir, scopes) {
  return el("ul", { class: "scopes" }, scopes.map((s) => el("li", { title: s }, scopeLabel(dir, s))));
}

async function act(work, done) {
  try { const result = await work(); if (done) toast(done); route(); return result; }
  catch (error) { toast(error.message, true); return null; }
}

function numberOrNull(value) {
  return value === "" || value === undefined ? null : Number(value);
}

// --- pages -------------------------------------------------------------------------------------

async function usersPage() {
  const users = await api("GET", "/users");
  const form = el("form", { class: "panel", onsubmit: async (event) => {
    event.preventDefault();
    const v = formValues(event.target);
    try {
      await api("POST", "/users", { username: v.username, password: v.password, email: v.email || null,
        display_name: v.display_name || null, is_admin: v.is_admin === "on" });
      toast(`Created ${v.username}`);
      route();
    } catch (error) { toast(error.message, true); }
  } },
    el("h2", {}, "New user"),
    el("div", { class: "form-grid" },
      field("Username", "username", { required: true, autocomplete: "off" }),
      field("Display name", "display_name"),
      field("Email", "email", { type: "email" }),
      field("Password", "password", { type: "password", required: true, autocomplete: "new-password", minlength: 12 }),
      el("label", { class: "check" }, el("input", { type: "checkbox", name: "is_admin" }), "Administrator")),
    el("p", {}, el("button", { type: "submit", class: "button button-primary btn-small" }, "Create user")));
  show(el("h1", {}, "Users"),
    el("div", { class: "panel" }, table(["Username", "Name", "Email", "Role", "Status", ""],
      users.map((u) => [el("a", { href: `#/users/${u.id}` }, u.username), u.display_name, u.email || "–",
        u.is_admin ? el("span", { class: "badge" }, "admin") : "user",
        u.disabled ? el("span", { class: "badge off" }, "disabled") : "active",
        el("a", { href: `#/users/${u.id}` }, "Grants & sessions")]))),
    form);
}

// A user's groups and what their next token for each resource carries (docs/groups-and-roles.md).
function accessSection(access) {
  return [
    el("h2", {}, "Groups and roles"),
    el("section", { class: "panel", "aria-label": "Groups and roles" },
      el("dl", { class: "facts" }, el("dt", {}, "Groups"),
        el("dd", {}, access.groups.length ? access.groups.flatMap((g, i) => [i ? ", " : "", el("a", { href: `#/groups/${g.id}` }, g.name)])
          : el("span", { class: "muted" }, "None"))),
      table(["Resource", "Roles (own and through groups)"], access.roles.map((r) => [r.resource_name,
        el("ul", { class: "roles" }, r.roles.map((name) => el("li", {}, name)))])),
      el("p", { class: "muted" }, "Grant and revoke roles on the ", el("a", { href: "#/roles" }, "Roles"), " page.")),
  ];
}

// A user's second factors as the admin API shows them (never a key, a secret or a hash), and
// the button that resets them all (the user's sessions end).
function factorsSection(user, factors) {
  const app = factors.authenticator_app;
  const codes = factors.recovery_codes;
  const reset = button("Reset second factors", async () => {
    if (!confirm(`Remove every second factor of ${user.username} (passkeys, authenticator app, recovery codes) and end their sessions? Where a second factor is required they set up a new one at their next sign-in.`)) return;
    try {
      const r = await api("DELETE", `/users/${user.id}/factors`);
      toast(`Reset: ${r.removed.passkeys} passkey(s), ${r.removed.authenticator_app} authenticator app, ${r.removed.recovery_codes} recovery code(s) removed; ${r.sessions_ended} session(s) ended`);
      route();
    } catch (error) { toast(error.message, true); }
  }, "danger");
  return [
    el("div", { class: "toolbar section" }, el("h2", {}, "Second factors"), el("span", { class: "spacer" }), reset),
    el("div", { class: "panel factors", "aria-label": "Second factors" },
      el("dl", { class: "facts" },
        el("dt", {}, "Authenticator app"),
        el("dd", {}, app ? [app.status === "active" ? "Set up" : el("span", { class: "badge off" }, "pending"),
          ` since ${when(app.since)}`] : el("span", { class: "muted" }, "Not set up")),
        el("dt", {}, "Recovery codes"),
        el("dd", {}, codes.total ? `${codes.left} left of ${codes.total}` : el("span", { class: "muted" }, "None"))),
      el("h3", {}, "Passkeys"),
      table(["Name", "Kind", "Added", "Last used"], factors.passkeys.map((p) => [
        el("span", { title: p.credential_id }, p.name),
        p.synced ? "Synced" : "Device-bound", when(p.created_at), when(p.last_used_at)]))),
  ];
}

async function userPage(id) {
  const [user, grants, sessions, consents, factors, access, dir] = await Promise.all([
    api("GET", `/users/${id}`), api("GET", `/users/${id}/grants`),
    api("GET", `/users/${id}/sessions`), api("GET", `/users/${id}/consents`),
    api("GET", `/users/${id}/factors`), api("GET", `/users/${id}/roles`), directory()]);
  const remove = button("Delete user", async () => {
    if (!confirm(`Delete ${user.username}? Their sessions and tokens are revoked first; this cannot be undone.`)) return;
    try {
      await api("DELETE", `/users/${id}`);
      toast(`Deleted ${user.username}`);
      location.hash = "#/users";
    } catch (error) { toast(error.message, true); }
  }, "danger");
  const revokeAll = button("Revoke all tokens", async () => {
    if (!confirm(`Revoke every token of ${user.username}? Sessions end and APIs refuse their tokens within a second.`)) return;
    try {
      const r = await api("POST", `/users/${id}/revoke-tokens`);
      toast(`Revoked: ${r.sessions} session(s) ended, ${r.grants} grant(s) revoked`);
      route();
    } catch (error) { toast(error.message, true); }
  }, "primary");
  const toggle = button(user.disabled ? "Enable user" : "Disable user", async () => {
    try { await api("PATCH", `/users/${id}`, { disabled: !user.disabled }); route(); }
    catch (error) { toast(error.message, true); }
  });
  show(el("h1", {}, user.display_name, " ", el("span", { class: "muted" }, `(${user.username})`)),
    el("div", { class: "toolbar" }, el("span", { class: "mono muted" }, `sub ${user.id}`),
      el("span", { class: "spacer" }), toggle, revokeAll, remove),
    el("h2", {}, "Active grants"),
    el("div", { class: "panel" }, table(["App", "Scopes", "Signed in", "Created", ""],
      grants.map((g) => [named(dir, g.client_id), scopeList(dir, g.scopes), when(g.auth_time), when(g.created_at),
        button("Revoke", async () => {
          try { await api("DELETE", `/grants/${g.grant_id}`); toast("Grant revoked"); route(); }
          catch (error) { toast(error.message, true); }
        })]))),
    el("h2", {}, "Browser sessions"),
    el("div", { class: "panel" }, table(["Signed in", "How", "Expires"], sessions.map((s) => [when(s.auth_time), s.upstream_provider ? `${s.amr.join(", ")} (through ${s.upstream_provider})` : s.amr.join(", "), when(s.expires_at)]))),
    el("h2", {}, "Consents"),
    el("div", { class: "panel" }, table(["App", "Scopes", "Granted", ""],
      consents.map((c) => [named(dir, c.client_id), scopeList(dir, c.scopes), when(c.granted_at),
        button("Revoke", async () => {
          try { await api("DELETE", `/users/${id}/consents/${c.client_id}`); route(); }
          catch (error) { toast(error.message, true); }
        })]))),
    ...accessSection(access),
    ...factorsSection(user, factors));
}

// An app's second-factor policy: the domain's (null) or its own; the stricter applies.
const APP_POLICIES = [["", "Domain default"], ["off", "Off"], ["optional", "Optional"], ["required", "Required"]];

function policySelect(current) {
  return el("label", {}, "Second factor",
    el("select", { name: "mfa_policy" }, APP_POLICIES.map(([value, text]) =>
      el("option", { value, selected: (current || "") === value }, text))));
}

// An app's own policy under its type; none: it follows the domain's.
function policyBadge(policy) {
  return policy ? [el("br"), el("span", { class: "badge nowrap", title: "The app's own second-factor policy" }, `MFA ${policy}`)] : null;
}

// How the app authenticates and what it must do (RFC 7591 metadata): read-only here, edited
// with `tessera admin apps update` or PATCH /apps/{id}.
function authBadge(a) {
  const method = a.token_endpoint_auth_method;
  const shown = method && method !== "client_secret_basic" && method !== "none";
  const badges = [];
  if (shown) badges.push(el("br"), el("span", { class: "badge nowrap", title: "token_endpoint_auth_method" }, method));
  if (a.profile) badges.push(el("br"), el("span", { class: "badge nowrap", title: "Security profile" }, a.profile.toUpperCase()));
  return badges;
}

function metadataPanel(a) {
  const rows = [
    ["Client authentication", a.token_endpoint_auth_method],
    ["Assertion algorithm", a.token_endpoint_auth_signing_alg || (a.token_endpoint_auth_method.endsWith("_jwt") ? "any of the method's" : "—")],
    ["Keys", a.jwks_uri ? el("code", {}, a.jwks_uri) : a.jwks ? `inline JWK Set (${a.jwks.keys.length} key${a.jwks.keys.length === 1 ? "" : "s"})` : "—"],
    ["Pushed authorization requests", a.require_pushed_authorization_requests ? "required" : "optional"],
    ["ID token algorithm", a.id_token_signed_response_alg],
    ["Profile", a.profile || "none"],
    ["Registered by", a.dynamically_registered ? "dynamic registration (RFC 7591)" : "an administrator"],
  ];
  if (a.client_uri) rows.push(["Home page", el("code", {}, a.client_uri)]);
  if (a.contacts && a.contacts.length) rows.push(["Contacts", a.contacts.join(", ")]);
  return el("div", {}, el("h3", {}, "Client authentication and profile"),
    table(["Setting", "Value"], rows),
    el("p", { class: "muted" }, "Change these with tessera admin apps update (or PATCH /apps/{id} in the admin API)."));
}

function secretBox(app) {
  return app.client_secret ? el("div", { class: "secret", role: "alert" },
    el("strong", {}, `Client secret of ${app.name} — copy it now, it is not shown again:`),
    el("code", {}, app.client_secret)) : null;
}

// RFC 8628: the device authorization grant (`tessera login --device`).
const DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";
// RFC 7523 §2.1: a trusted issuer's assertion for a user (confidential apps only).
const JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const JWT_BEARER_LABEL = "JWT bearer grant (RFC 7523, trusted issuers)";

async function appsPage(created) {
  const apps = await api("GET", "/apps");
  const form = el("form", { class: "panel", onsubmit: async (event) => {
    event.preventDefault();
    const v = formValues(event.target);
    try {
      const grants = ["authorization_code", "refresh_token"];
      if (v.client_credentials === "on") grants.push("client_credentials");
      if (v.device_code === "on") grants.push(DEVICE_GRANT);
      if (v.jwt_bearer === "on") grants.push(JWT_BEARER_GRANT);
      const app = await api("POST", "/apps", { name: v.name, public: v.public === "on",
        redirect_uris: lines(v.redirect_uris), allowed_scopes: lines(v.allowed_scopes), grant_types: grants,
        access_token_ttl: v.access_token_ttl ? Number(v.access_token_ttl) : null,
        mfa_policy: v.mfa_policy || null });
      draw(() => appsPage(app));
    } catch (error) { toast(error.message, true); }
  } },
    el("h2", {}, "New trusted application"),
    el("div", { class: "form-grid" },
      field("Name", "name", { required: true }),
      field("Redirect URIs (space separated)", "redirect_uris", { placeholder: "https://app.example.test/callback" }),
      field("Allowed scopes (space separated)", "allowed_scopes", { placeholder: "openid profile https://api…urn:…" }),
      field("Access-token lifetime (s)", "access_token_ttl", { type: "number", min: 30, max: 86400, placeholder: "3600" }),
      policySelect(null),
      el("label", { class: "check" }, el("input", { type: "checkbox", name: "public" }), "Public app (PKCE, no secret)"),
      el("label", { class: "check" }, el("input", { type: "checkbox", name: "client_credentials" }), "Client credentials grant"),
      el("label", { class: "check" }, el("input", { type: "checkbox", name: "device_code" }), "Device login (RFC 8628)"),
      el("label", { class: "check" }, el("input", { type: "checkbox", name: "jwt_bearer" }), JWT_BEARER_LABEL)),
    el("p", {}, el("button", { type: "submit", class: "button button-primary btn-small" }, "Register app")));
  const dir = await directory();
  show(el("h1", {}, "Trusted applications"), created ? secretBox(created) : null,
    el("div", { class: "panel" }, table(["Name", "Client ID", "Type", "Grant types", "Allowed scopes", ""],
      apps.map((a) => [a.name, el("code", {}, a.client_id), el("span", {}, a.type, policyBadge(a.mfa_policy), authBadge(a)),
        a.grant_types.join(", "), scopeList(dir, a.allowed_scopes),
        el("div", { class: "actions" },
          isConsoleApp(a.client_id) ? el("span", { class: "muted" }, "system app") : [
            button("Edit", () => editApp(a)),
            button("Delete", () => {
              if (!confirm(`Delete ${a.name}? Every token issued to it is revoked.`)) return;
              act(() => api("DELETE", `/apps/${a.client_id}`), `Deleted ${a.name}`);
            }, "danger"),
          ],
          a.type === "confidential" && a.token_endpoint_auth_method !== "private_key_jwt" ? button("Rotate secret", async () => {
            try {
              const rotated = await api("POST", `/apps/${a.client_id}/rotate-secret`, { grace_seconds: 3600 });
              draw(() => appsPage(rotated));
            }
            catch (error) { toast(error.message, true); }
          }) : null)]))),
    el("div", { id: "editor" }),
    form);
}

// Edit an app in place: the same rules as registration apply on the server.
function editApp(a) {
  const grant = (name, label) => el("label", { class: "check" },
    el("input", { type: "checkbox", name: `grant_${name}`, checked: a.grant_types.includes(name) }), label);
  const confidential = a.type === "confidential";
  // The grant types with a checkbox; the app's others (token exchange, set on its own page
  // of the API) are sent back as they are, so a save never drops a grant unseen.
  const shown = ["authorization_code", "refresh_token", DEVICE_GRANT,
    ...(confidential ? ["client_credentials", JWT_BEARER_GRANT] : [])];
  const form = el("form", { class: "panel", "aria-label": `Edit ${a.name}`, onsubmit: async (event) => {
    event.preventDefault();
    const v = formValues(event.target);
    const grants = [...a.grant_types.filter((g) => !shown.includes(g)),
      ...shown.filter((g) => v[`grant_${g}`] === "on")];
    await act(() => api("PATCH", `/apps/${a.client_id}`, { name: v.name,
      redirect_uris: lines(v.redirect_uris), post_logout_redirect_uris: lines(v.post_logout_redirect_uris),
      allowed_scopes: lines(v.allowed_scopes), grant_types: grants,
      access_token_ttl: numberOrNull(v.access_token_ttl), refresh_token_ttl: numberOrNull(v.refresh_token_ttl),
      mfa_policy: v.mfa_policy || null }),
    `Saved ${v.name}`);
  } },
    el("h2", {}, `Edit ${a.name}`),
    el("div", { class: "form-grid" },
      field("Name", "name", { required: true, value: a.name }),
      field("Redirect URIs (space separated)", "redirect_uris", { value: a.redirect_uris.join(" ") }),
      field("Post-logout redirect URIs", "post_logout_redirect_uris", { value: a.post_logout_redirect_uris.join(" ") }),
      field("Allowed scopes (space separated)", "allowed_scopes", { value: a.allowed_scopes.join(" ") }),
      field("Access-token lifetime (s)", "access_token_ttl", { type: "number", min: 30, max: 86400, value: a.access_token_ttl ?? "" }),
      field("Refresh-token lifetime (s)", "refresh_token_ttl", { type: "number", min: 60, value: a.refresh_token_ttl ?? "" }),
      policySelect(a.mfa_policy),
      grant("authorization_code", "Authorization code"), grant("refresh_token", "Refresh token"),
      confidential ? grant("client_credentials", "Client credentials") : null,
      grant(DEVICE_GRANT, "Device login (RFC 8628)"),
      confidential ? grant(JWT_BEARER_GRANT, JWT_BEARER_LABEL) : null),
    el("p", { class: "muted" }, "A removed scope is refused to new requests; tokens already issued work until they expire. ",
      "An app's second-factor policy can be stricter than the domain's, never looser."),
    metadataPanel(a),
    el("p", {}, el("button", { type: "submit", class: "button button-primary btn-small" }, "Save app"), " ",
      button("Cancel", () => document.getElementById("editor").replaceChildren())));
  document.getElementById("editor").replaceChildren(form);
  form.querySelector("input[name=name]").focus();
}

async function resourcesPage() {
  const resources = await api("GET", "/resources");
  const form = el("form", { class: "panel", onsubmit: async (event) => {
    event.preventDefault();
    const v = formValues(event.target);
    try {
      await api("POST", "/resources", { name: v.name, audience: v.audience, scopes: lines(v.scopes),
        access_token_ttl: v.access_token_ttl ? Number(v.access_token_ttl) : null,
        roles: parseRoles(v.roles), include_groups: v.include_groups === "on" });
      route();
    } catch (error) { toast(error.message, true); }
  } },
    el("h2", {}, "New resource"),
    el("div", { class: "form-grid" },
      field("Name", "name", { required: true }),
      field("Audience", "audience", { required: true, placeholder: "https://api.example.test" }),
      field("Scopes (space separated)", "scopes", { required: true }),
      field("Access-token lifetime cap (s)", "access_token_ttl", { type: "number", min: 30, max: 86400 }),
      rolesField(""),
      el("label", { class: "check" }, el("input", { type: "checkbox", name: "include_groups" }), GROUPS_LABEL)),
    el("p", {}, el("button", { type: "submit", class: "button button-primary btn-small" }, "Register resource")));
  show(el("h1", {}, "Resources"),
    el("div", { class: "panel" }, table(["Name", "Audience", "Scopes", "Roles", "Token lifetime", ""],
      resources.map((r) => [r.name, el("code", { class: "mono" }, r.audience), r.scopes.join(" "),
        el("span", {}, roleNames(r.roles), r.include_groups ? el("span", { class: "badge nowrap", title: GROUPS_LABEL }, "groups claim") : null),
        r.access_token_ttl || "default",
        el("div", { class: "actions" },
          button("Edit", () => editResource(r)),
          button("Delete", () => {
            if (!confirm(`Delete ${r.name}?`)) return;
            act(() => api("DELETE", `/resources/${r.id}`), `Deleted ${r.name}`);
          }, "danger"))]))),
    el("div", { id: "editor" }),
    form);
}

const GROUPS_LABEL = "Tokens carry the user's groups (groups claim)";

function rolesField(value) {
  return el("label", {}, "Roles (one a line: Name = what it may do)",
    el("textarea", { name: "roles", rows: 3, placeholder: "ServiceDeveloper = Builds and deploys integrations" }, value));
}

function editResource(r) {
  const form = el("form", { class: "panel", "aria-label": `Edit ${r.name}`, onsubmit: async (event) => {
    event.preventDefault();
    const v = formValues(event.target);
    await act(() => api("PATCH", `/resources/${r.id}`, { name: v.name, scopes: lines(v.scopes),
      access_token_ttl: numberOrNull(v.access_token_ttl), roles: parseRoles(v.roles),
      include_groups: v.include_groups === "on" }), `Saved ${v.name}`);
  } },
    el("h2", {}, `Edit ${r.name}`),
    el("div", { class: "form-grid" },
      field("Name", "name", { required: true, value: r.name }),
      field("Scopes (space separated)", "scopes", { required: true, value: r.scopes.join(" ") }),
      field("Access-token lifetime cap (s)", "access_token_ttl", { type: "number", min: 30, max: 86400, value: r.access_token_ttl ?? "" }),
      rolesField(rolesText(r.roles)),
      el("label", { class: "check" }, el("input", { type: "checkbox", name: "include_groups", checked: r.include_groups }), GROUPS_LABEL)),
    el("p", { class: "muted" }, "A role still granted cannot be removed: revoke it on the ", el("a", { href: "#/roles" }, "Roles"), " page first."),
    el("p", {}, el("button", { type: "submit", class: "button button-primary btn-small" }, "Save resource"), " ",
      button("Cancel", () => document.getElementById("editor").replaceChildren())));
  document.getElementById("editor").replaceChildren(form);
  form.querySelector("input[name=name]").focus();
}

async function keysPage() {
  const keys = await api("GET", "/keys");
  show(el("h1", {}, "Signing keys"),
    el("div", { class: "toolbar" }, el("span", { class: "muted" },
      "Rotation promotes the published next key and keeps retired keys until their tokens expire."),
      el("span", { class: "spacer" }), button("Rotate keys", async () => {
        try { await api("POST", "/keys/rotate", { alg: "all" }); toast("Keys rotated"); route(); }
        catch (error) { toast(error.message, true); }
      }, "primary")),
    el("div", { class: "panel" }, table(["Key ID", "Algorithm", "State", "Created", "Published until"],
      keys.map((k) => [el("code", {}, k.kid), k.alg, k.state, when(k.created_at), when(k.retire_after)]))));
}

// Initial access tokens for dynamic client registration (RFC 7591): the token is shown once.
async function registrationTokensPage(created) {
  const tokens = await api("GET", "/registration-tokens");
  const form = el("form", { class: "panel", "aria-label": "New registration token", onsubmit: async (event) => {
    event.preventDefault();
    const v = formValues(event.target);
    try {
      const made = await api("POST", "/registration-tokens", { description: v.description || "",
        expires_in: v.expires_in === "" ? 86400 : Number(v.expires_in), max_uses: numberOrNull(v.max_uses),
        allowed_scopes: lines(v.allowed_scopes) });
      draw(() => registrationTokensPage(made));
    } catch (error) { toast(error.message, true); }
  } },
    el("h2", {}, "New registration token"),
    el("div", { class: "form-grid" },
      field("Description", "description", { maxlength: 200 }),
      field("Lifetime (s, 0: until revoked)", "expires_in", { type: "number", min: 0, placeholder: "86400" }),
      field("Uses (empty: without limit)", "max_uses", { type: "number", min: 1 }),
      field("Allowed scopes (space separated; empty: any)", "allowed_scopes", { placeholder: "openid profile https://api…urn:…" })),
    el("p", { class: "muted" }, "Apps register with it at ", el("code", {}, `${location.origin}${PREFIX}/oauth2/v1/register`),
      " (Authorization: Bearer <token>); the apps it registered stay when it is revoked."),
    el("p", {}, el("button", { type: "submit", class: "button button-primary btn-small" }, "Create token")));
  const dir = tokens.some((t) => t.allowed_scopes.length) ? await directory() : null;
  show(el("h1", {}, "Registration tokens"),
    created ? el("div", { class: "secret", role: "alert" },
      el("strong", {}, "Registration token — copy it now, it is not shown again:"), el("code", {}, created.token)) : null,
    el("div", { class: "panel" }, table(["Description", "ID", "State", "Uses", "Scopes", "Expires", "Created", ""],
      tokens.map((t) => [t.description || "–", el("code", {}, t.id), t.state,
        t.max_uses === null ? `${t.uses}` : `${t.uses} of ${t.max_uses}`,
        t.allowed_scopes.length ? scopeList(dir, t.allowed_scopes) : "any", when(t.expires_at), when(t.created_at),
        t.state === "active" ? button("Revoke", () => {
          if (!confirm("Revoke this registration token? Apps it registered stay.")) return;
          act(() => api("POST", `/registration-tokens/${t.id}/revoke`), "Token revoked");
        }, "danger") : null]))),
    form);
}

// Trusted assertion issuers for the JWT bearer grant (RFC 7523 §2.1): partner systems whose
// signed JWTs get the apps they name a token for a user of this domain.
async function trustedIssuersPage() {
  const [issuers, dir] = await Promise.all([api("GET", "/trusted-issuers"), directory()]);
  const form = el("form", { class: "panel", "aria-label": "New trusted issuer", onsubmit: async (event) => {
    event.preventDefault();
    const v = formValues(event.target);
    let jwks = null;
    if (v.jwks) {
      try { jwks = JSON.parse(v.jwks); } catch { toast("The JWK Set is not JSON", true); return; }
    }
    await act(() => api("POST", "/trusted-issuers", { issuer: v.issuer, jwks, jwks_uri: v.jwks_uri || null,
      allowed_apps: lines(v.allowed_apps), allowed_scopes: lines(v.allowed_scopes),
      description: v.description || "" }), "Issuer trusted");
  } },
    el("h2", {}, "New trusted issuer"),
    el("div", { class: "form-grid" },
      field("Issuer (the assertions' iss)", "issuer", { required: true, maxlength: 1024 }),
      field("Description", "description", { maxlength: 200 }),
      field("JWKS URI (https)", "jwks_uri", { placeholder: "https://partner.example/jwks.json" }),
      el("label", {}, "Or its public JWK Set (JSON)", el("textarea", { name: "jwks", rows: 3, placeholder: '{"keys": [...]}' })),
      field("Allowed apps (client ids, space separated)", "allowed_apps"),
      field("Allowed scopes (space separated; empty: the app's)", "allowed_scopes", { placeholder: "openid profile https://api…urn:…" })),
    el("p", { class: "muted" }, "An allowed app with the grant type ", el("code", {}, "urn:ietf:params:oauth:grant-type:jwt-bearer"),
      " posts the partner's signed JWT as ", el("code", {}, "assertion"), " to ", el("code", {}, `${location.origin}${PREFIX}/oauth2/v1/token`),
      " and gets a token for the user its sub names."),
    el("p", {}, el("button", { type: "submit", class: "button button-primary btn-small" }, "Trust issuer")));
  show(el("h1", {}, "Trusted issuers"),
    el("div", { class: "panel" }, table(["Issuer", "Keys", "Apps", "Scopes", "Updated", ""],
      issuers.map((i) => [el("code", {}, i.issuer),
        i.jwks_uri ? el("code", {}, i.jwks_uri) : `inline JWK Set (${i.jwks.keys.length} key${i.jwks.keys.length === 1 ? "" : "s"})`,
        i.allowed_apps.length ? el("ul", { class: "scopes" }, i.allowed_apps.map((id) => el("li", {}, named(dir, id)))) : "none",
        i.allowed_scopes.length ? scopeList(dir, i.allowed_scopes) : "the app's", when(i.updated_at),
        button("Delete", () => {
          if (!confirm(`Stop trusting ${i.issuer}? Tokens it got stay until they expire.`)) return;
          act(() => api("DELETE", `/trusted-issuers/${i.id}`), "Issuer deleted");
        }, "danger")]))),
    form);
}

// --- upstream sign-in providers (docs/federation.md) -------------------------------------------

const AUTH_METHODS = [["client_secret_basic", "Client secret (HTTP Basic)"], ["client_secret_post", "Client secret (in the body)"],
  ["private_key_jwt", "Our own key (private_key_jwt)"]];

function authSelect(current) {
  return el("label", {}, "Client authentication",
    el("select", { name: "auth_method" }, AUTH_METHODS.map(([value, text]) =>
      el("option", { value, selected: current === value }, text))));
}

function box(name, label, checked) {
  return el("label", { class: "check" }, el("input", { type: "checkbox", name, checked }), label);
}

// The provider's settings as the add and edit forms send them (the secret only when typed).
function providerFields(v) {
  const body = { display_name: v.display_name, issuer: v.issuer, client_id: v.client_id,
    auth_method: v.auth_method, scopes: lines(v.scopes), username_claim: v.username_claim,
    email_claim: v.email_claim, name_claim: v.name_claim, groups_claim: v.groups_claim || null,
    sync_groups: v.sync_groups === "on", jit: v.jit === "on", link_existing: v.link_existing === "on", email_domains: lines(v.email_domains),
    description: v.description || "" };
  if (v.client_secret) body.client_secret = v.client_secret;
  return body;
}

function providerForm(p) {
  return el("div", { class: "form-grid" },
    field("Name (in its URLs)", "name", { required: true, value: p.name, pattern: "[a-z0-9][a-z0-9\\-]{0,62}",
      title: "Lower-case letters, digits and hyphens", autocomplete: "off" }),
    field("Button text", "display_name", { value: p.display_name, maxlength: 100, placeholder: "Sign in with …" }),
    field("Issuer (exactly as it names itself)", "issuer", { required: true, value: p.issuer, placeholder: "https://login.partner.example" }),
    field("Client ID it gave us", "client_id", { required: true, value: p.client_id, autocomplete: "off" }),
    authSelect(p.auth_method),
    field(p.has_client_secret ? "New client secret (empty: keep)" : "Client secret", "client_secret",
      { type: "password", autocomplete: "new-password" }),
    field("Scopes (space separated; openid always)", "scopes", { value: p.scopes.join(" ") }),
    field("E-mail domains sent to it (space separated)", "email_domains", { value: p.email_domains.join(" "), placeholder: "partner.example" }),
    field("Username claim", "username_claim", { required: true, value: p.username_claim }),
    field("E-mail claim", "email_claim", { required: true, value: p.email_claim }),
    field("Name claim", "name_claim", { required: true, value: p.name_claim }),
    field("Groups claim (empty: no group mapping)", "groups_claim", { value: p.groups_claim || "" }),
    field("Description", "description", { value: p.description, maxlength: 200 }),
    box("sync_groups", "The groups claim is the whole truth: end the memberships it made that it no longer names", p.sync_groups),
    box("jit", "Create an account at a first sign-in", p.jit),
    box("link_existing", "Link to the account with the same verified e-mail (never an administrator's)", p.link_existing));
}

// Open the test sign-in in a new tab: the tab is opened at the click (a pop-up blocker allows
// that), then sent to the URL the API made (a ticket valid ten minutes).
async function trySignIn(p) {
  const tab = window.open("about:blank", "_blank");
  try {
    const result = await api("POST", `/providers/${p.id}/test`);
    if (tab) { tab.opener = null; tab.location.href = result.try_sign_in_url; }
    else location.assign(result.try_sign_in_url);
    toast(result.check.warnings.length ? `Warning: ${result.check.warnings.join("; ")}` : "Discovery checked; sign in in the new tab");
  } catch (error) {
    if (tab) tab.close();
    toast(error.message, true);
  }
}

function switchButton(p) {
  return button(p.enabled ? "Disable" : "Enable", () => act(
    () => api("PATCH", `/providers/${p.id}`, { enabled: !p.enabled }), `${p.enabled ? "Disabled" : "Enabled"} ${p.name}`));
}

function removeButton(p, after) {
  return button("Remove", async () => {
    if (!confirm(`Remove ${p.display_name}? Its ${p.linked_accounts} linked account(s) can no longer sign in through it (the users stay; those without a password need a reset).`)) return;
    try {
      await api("DELETE", `/providers/${p.id}`);
      toast(`Removed ${p.name}`);
      if (after) location.hash = after; else route();
    } catch (error) { toast(error.message, true); }
  }, "danger");
}

const NEW_PROVIDER = { name: "", display_name: "", issuer: "", client_id: "", auth_method: "client_secret_basic",
  has_client_secret: false, scopes: ["openid", "email", "profile"], email_domains: [], username_claim: "preferred_username",
  email_claim: "email", name_claim: "name", groups_claim: null, description: "", sync_groups: false, jit: true,
  link_existing: false };

async function providersPage() {
  const providers = await api("GET", "/providers");
  const form = el("form", { class: "panel", "aria-label": "New sign-in provider", onsubmit: async (event) => {
    event.preventDefault();
    const v = formValues(event.target);
    try {
      const p = await api("POST", "/providers", { ...providerFields(v), name: v.name,
        display_name: v.display_name || null, enabled: v.enabled === "on", check: v.check === "on" });
      toast(`Added ${p.name}: register its redirect URI at the provider`);
      location.hash = `#/providers/${p.id}`;
    } catch (error) { toast(error.message, true); }
  } },
    el("h2", {}, "New sign-in provider"),
    providerForm(NEW_PROVIDER),
    el("div", { class: "form-grid" }, box("enabled", "Offer it on the sign-in page", true),
      box("check", "Check its discovery document and keys before saving", true)),
    el("p", { class: "muted" }, "An OpenID Connect provider (another identity domain, Entra ID, Google…). Register the redirect URI shown after saving at the provider, ",
      "and for private_key_jwt our public keys."),
    el("p", {}, el("button", { type: "submit", class: "button button-primary btn-small" }, "Add provider")));
  show(el("h1", {}, "Sign-in providers"),
    el("p", { class: "muted" }, "Users of this domain sign in through these upstream OpenID Connect providers."),
    el("div", { class: "panel" }, table(["Name", "Issuer", "Client authentication", "E-mail domains", "Linked", "State", ""],
      providers.map((p) => [el("a", { href: `#/providers/${p.id}`, title: p.name }, p.display_name), el("code", {}, p.issuer),
        p.auth_method, p.email_domains.length ? p.email_domains.join(", ") : "–", String(p.linked_accounts),
        p.enabled ? "enabled" : el("span", { class: "badge" }, "disabled"),
        el("div", { class: "actions" }, button("Try sign-in", () => trySignIn(p)), switchButton(p), removeButton(p))]))),
    form);
}

function checkPanel(result) {
  const c = result.check;
  return el("div", { class: "panel" }, el("h2", {}, "Discovery check"),
    c.warnings.map((w) => el("p", { class: "alert alert-error", role: "alert" }, w)),
    table(["Found", "Value"], [
      ["Issuer", el("code", {}, c.issuer)], ["Authorization endpoint", el("code", {}, c.authorization_endpoint)],
      ["Token endpoint", el("code", {}, c.token_endpoint)], ["JWKS", el("code", {}, c.jwks_uri)],
      ["Userinfo endpoint", c.userinfo_endpoint ? el("code", {}, c.userinfo_endpoint) : "–"],
      ["ID token algorithms", c.id_token_signing_alg_values_supported.join(", ")],
      ["Client authentication", c.token_endpoint_auth_methods_supported.join(", ")],
      ["PKCE", c.code_challenge_methods_supported.join(", ") || "not advertised"],
      ["iss in responses (RFC 9207)", c.iss_parameter_supported ? "yes" : "no"],
      ["Signing keys", c.key_ids.map((k) => k || "(no kid)").join(", ")]]));
}

async function providerPage(id) {
  const p = await api("GET", `/providers/${id}`);
  const own = p.auth_method === "private_key_jwt";
  const form = el("form", { class: "panel", "aria-label": `Edit ${p.name}`, onsubmit: async (event) => {
    event.preventDefault();
    const v = formValues(event.target);
    await act(() => api("PATCH", `/providers/${p.id}`, { ...providerFields(v), name: v.name,
      rotate_key: v.rotate_key === "on" }), `Saved ${v.name}`);
  } },
    el("h2", {}, "Settings"),
    providerForm(p),
    own ? el("div", { class: "form-grid" }, box("rotate_key", "Replace our key (register the new one at the provider)", false)) : null,
    el("p", {}, el("button", { type: "submit", class: "button button-primary btn-small" }, "Save provider")));
  const check = el("div", {});
  const register = [["Redirect URI", el("code", {}, p.redirect_uri)]];
  if (own) register.push(["Our public keys (JWKS URI)", el("code", {}, p.jwks_uri)], ["Key ID", el("code", {}, p.key_id || "–")]);
  show(el("h1", {}, p.display_name, " ", el("span", { class: "muted" }, `(${p.name})`)),
    el("div", { class: "toolbar" }, el("a", { href: "#/providers" }, "← Sign-in providers"), el("span", { class: "spacer" }),
      el("span", { class: "mono muted" }, `id ${p.id}`),
      button("Check discovery", async () => {
        try { check.replaceChildren(checkPanel(await api("POST", `/providers/${p.id}/test`))); }
        catch (error) { toast(error.message, true); }
      }),
      button("Try sign-in", () => trySignIn(p)), switchButton(p), removeButton(p, "#/providers")),
    p.enabled ? null : el("p", { class: "notice" }, "Disabled: users do not see it on the sign-in page."),
    el("div", { class: "panel" }, el("h2", {}, "Register at the provider"), table(["What", "Value"], register),
      own ? el("details", {}, el("summary", {}, "Our public JWK Set"), el("pre", { class: "mono" }, JSON.stringify(p.jwks, null, 2))) : null,
      el("p", { class: "muted" }, `${p.linked_accounts} account(s) linked. Created ${when(p.created_at)} by ${p.created_by || "–"}; updated ${when(p.updated_at)}.`)),
    check,
    form);
}

// The domain's sign-in policy: second factors for users, and for every administrator.
async function policyPage() {
  const policy = await api("GET", "/sign-in-policy");
  const choice = (value, title, text) => el("label", { class: "choice" },
    el("input", { type: "radio", name: "mfa_policy", value, checked: policy.mfa_policy === value }),
    el("span", {}, el("strong", {}, title), el("br"), el("span", { class: "muted" }, text)));
  const form = el("form", { class: "panel", "aria-label": "Sign-in policy", onsubmit: async (event) => {
    event.preventDefault();
    const v = formValues(event.target);
    await act(() => api("PATCH", "/sign-in-policy", { mfa_policy: v.mfa_policy,
      admin_mfa_required: v.admin_mfa_required === "on" }), "Sign-in policy saved");
  } },
    el("h2", {}, "Second factor"),
    el("div", { class: "choices", role: "radiogroup", "aria-label": "Second factor" },
      choice("off", "Off", "Users sign in with their password. Administrators who have a second factor still use it."),
      choice("optional", "Optional", "Users may add a passkey or an authenticator app; once they have one, they use it."),
      choice("required", "Required", "Every user needs a second factor: a user without one sets it up right after the password.")),
    el("label", { class: "check" }, el("input", { type: "checkbox", name: "admin_mfa_required", checked: policy.admin_mfa_required }),
      "Require a second factor for all administrators"),
    el("p", { class: "muted" }, "An app may require a second factor of its own (Apps › Edit); the stricter of the two applies. ",
      "Changes apply to the next sign-ins within seconds; signed-in sessions are not ended."),
    el("p", {}, el("button", { type: "submit", class: "button button-primary btn-small" }, "Save policy")));
  show(el("h1", {}, "Sign-in policy"), form);
}

const AUDIT_TYPES = [
  "admin.user_created", "admin.user_disabled", "admin.user_enabled", "admin.user_deleted",
  "admin.password_set", "admin.user_tokens_revoked", "admin.sessions_ended", "admin.consent_revoked",
  "admin.app_created", "admin.app_updated", "admin.app_deleted", "admin.app_secret_rotated",
  "admin.app_tokens_revoked", "admin.grant_revoked", "admin.resource_created",
  "admin.resource_updated", "admin.resource_deleted", "admin.keys_rotated",
  "admin.domain_created", "admin.domain_updated", "admin.domain_disabled", "admin.domain_enabled",
  "admin.domain_deleted", "admin.user_factors_reset", "admin.sign_in_policy_set",
  "registration_token.created", "registration_token.revoked", "registration.created",
  "registration.updated", "registration.deleted", "registration.refused",
  "trusted_issuer.created", "trusted_issuer.updated", "trusted_issuer.deleted",
  "admin.group_created", "admin.group_updated", "admin.group_members_added",
  "admin.group_members_removed", "admin.group_deleted", "admin.role_granted", "admin.role_revoked",
  "provider.created", "provider.updated", "provider.enabled", "provider.disabled", "provider.deleted",
  "federation.user_created", "federation.linked", "federation.groups_changed", "federation.refused",
  "federation.tested",
  "account.provider_linked", "account.provider_unlinked",
];
let auditFilter = {};

function isoOrNull(local) {
  return local ? new Date(local).toISOString() : null;
}

async function auditPage(beforeId) {
  const query = new URLSearchParams({ limit: "50" });
  for (const [key, value] of Object.entries(auditFilter)) if (value) query.set(key, value);
  if (beforeId) query.set("before_id", beforeId);
  const [page, dir] = await Promise.all([api("GET", `/audit?${query}`), directory()]);
  const choice = (name, label, options) => el("label", {}, label,
    el("select", { name }, el("option", { value: "" }, "any"),
      options.map(([value, text]) => el("option", { value, selected: auditFilter[name] === value }, text))));
  const local = (iso) => (iso ? new Date(new Date(iso).getTime() - new Date().getTimezoneOffset() * 60000).toISOString().slice(0, 16) : "");
  const filters = el("form", { class: "panel", "aria-label": "Filter events", onsubmit: (event) => {
    event.preventDefault();
    const v = formValues(event.target);
    auditFilter = { type: v.type, user_id: v.user_id, client_id: v.client_id,
      since: isoOrNull(v.since), until: isoOrNull(v.until) };
    draw(() => auditPage());
  } },
    el("div", { class: "form-grid" },
      choice("type", "Event", AUDIT_TYPES.map((t) => [t, t])),
      choice("user_id", "User", dir.users.map((u) => [u.id, u.username])),
      choice("client_id", "App", dir.apps.map((a) => [a.client_id, a.name])),
      field("From", "since", { type: "datetime-local", value: local(auditFilter.since) }),
      field("To", "until", { type: "datetime-local", value: local(auditFilter.until) })),
    el("p", {}, el("button", { type: "submit", class: "button button-primary btn-small" }, "Filter"), " ",
      button("Clear", () => { auditFilter = {}; draw(() => auditPage()); })));
  show(el("h1", {}, "Audit log"), filters,
    el("div", { class: "panel" }, table(["When", "Event", "Actor", "User", "App", "Address", "Details"],
      page.events.map((e) => [el("span", { class: "nowrap" }, when(e.at)), el("code", {}, e.type),
        named(dir, e.actor), named(dir, e.user_id), named(dir, e.client_id), el("span", { class: "nowrap" }, e.ip || "–"),
        el("span", { class: "mono" }, JSON.stringify(e.details))]))),
    page.next_before_id ? button("Older events", () => draw(() => auditPage(page.next_before_id))) : null);
}

// --- groups and application roles (docs/groups-and-roles.md) ---------------------------------

// A resource's roles as the editor writes them: one a line, "Name = what it may do".
function rolesText(roles) {
  return roles.map((r) => (r.description ? `${r.name} = ${r.description}` : r.name)).join("\n");
}

function parseRoles(text) {
  return (text || "").split("\n").map((line) => line.trim()).filter(Boolean).map((line) => {
    const at = line.indexOf("=");
    return at < 0 ? { name: line, description: "" }
      : { name: line.slice(0, at).trim(), description: line.slice(at + 1).trim() };
  });
}

function roleNames(roles) {
  return roles.length ? el("ul", { class: "roles" }, roles.map((r) => el("li", { title: r.description || null }, r.name)))
    : el("span", { class: "muted" }, "none");
}

// "Also revoke their tokens": what taking a role or a membership away does to tokens already
// issued (without it they keep the role until they expire).
function revokeBox(name, text) {
  return el("label", { class: "check" }, el("input", { type: "checkbox", name }), text);
}

function checked(name) {
  const box = document.querySelector(`input[name=${name}]`);
  return Boolean(box && box.checked);
}

async function groupsPage() {
  const [groups, users] = await Promise.all([api("GET", "/groups"), api("GET", "/users")]);
  const form = el("form", { class: "panel", "aria-label": "New group", onsubmit: async (event) => {
    event.preventDefault();
    const v = formValues(event.target);
    try {
      const group = await api("POST", "/groups", { name: v.name, description: v.description || "",
        members: lines(v.members) });
      toast(`Created ${group.name}`);
      location.hash = `#/groups/${group.id}`;
    } catch (error) { toast(error.message, true); }
  } },
    el("h2", {}, "New group"),
    el("div", { class: "form-grid" },
      field("Name", "name", { required: true, maxlength: 200, autocomplete: "off" }),
      field("Description", "description", { maxlength: 500 }),
      field("Members (usernames, space separated)", "members", { list: "usernames", autocomplete: "off" })),
    el("datalist", { id: "usernames" }, users.map((u) => el("option", { value: u.username }))),
    el("p", {}, el("button", { type: "submit", class: "button button-primary btn-small" }, "Create group")));
  show(el("h1", {}, "Groups"),
    el("p", { class: "muted" }, "Members get the roles granted to the group at their next token; ",
      "resources that ask for it see the group's name in the ", el("code", {}, "groups"), " claim."),
    el("div", { class: "panel" }, table(["Name", "Description", "Members", "Updated", ""],
      groups.map((g) => [el("a", { href: `#/groups/${g.id}` }, g.name), g.description || "–",
        String(g.member_count), el("span", { class: "nowrap" }, when(g.updated_at)),
        el("a", { href: `#/groups/${g.id}` }, "Members & roles")]))),
    form);
}

async function groupPage(id) {
  const [group, users] = await Promise.all([api("GET", `/groups/${id}`), api("GET", "/users")]);
  const members = new Set(group.members.map((m) => m.id));
  const people = new Map(users.map((u) => [u.id, u.username]));
  const others = users.filter((u) => !members.has(u.id));
  const rename = el("form", { class: "panel", "aria-label": "Edit group", onsubmit: async (event) => {
    event.preventDefault();
    const v = formValues(event.target);
    await act(() => api("PATCH", `/groups/${id}`, { name: v.name, description: v.description }), `Saved ${v.name}`);
  } },
    el("div", { class: "form-grid" },
      field("Name", "name", { required: true, value: group.name, maxlength: 200 }),
      field("Description", "description", { value: group.description, maxlength: 500 })),
    el("p", {}, el("button", { type: "submit", class: "button button-primary btn-small" }, "Save group")));
  const add = el("form", { class: "toolbar", "aria-label": "Add a member", onsubmit: async (event) => {
    event.preventDefault();
    const v = formValues(event.target);
    if (!v.user) return;
    await act(() => api("POST", `/groups/${id}/members`, { users: [v.user] }), "Member added");
  } },
    el("label", {}, "Add ", el("select", { name: "user", "aria-label": "User to add" },
      el("option", { value: "" }, others.length ? "choose a user…" : "every user is a member"),
      others.map((u) => el("option", { value: u.id }, u.username)))),
    el("button", { type: "submit", class: "button button-secondary btn-small" }, "Add member"));
  const remove = (m) => button("Remove", () => {
    const revoke = checked("revoke_members");
    act(() => api("DELETE", `/groups/${id}/members?${new URLSearchParams({ user: m.id, revoke_tokens: String(revoke) })}`),
      `Removed ${m.username}${revoke ? "; their tokens for the group's resources are revoked" : ""}`);
  });
  const drop = button("Delete group", async () => {
    const revoke = checked("revoke_members");
    if (!confirm(`Delete the group ${group.name}? Its members lose the roles granted to it${revoke ? " and their tokens for its resources are revoked" : " at their next token"}; the users stay.`)) return;
    try {
      await api("DELETE", `/groups/${id}?revoke_tokens=${revoke}`);
      toast(`Deleted ${group.name}`);
      location.hash = "#/groups";
    } catch (error) { toast(error.message, true); }
  }, "danger");
  show(el("h1", {}, group.name, " ", el("span", { class: "muted" }, "(group)")),
    el("div", { class: "toolbar" }, el("a", { href: "#/groups" }, "← Groups"), el("span", { class: "spacer" }),
      el("span", { class: "mono muted" }, `id ${group.id}`), drop),
    rename,
    el("h2", {}, "Members"),
    el("div", { class: "panel" }, add,
      revokeBox("revoke_members", "Also revoke the tokens of members removed (or of all members when the group is deleted) for the resources the group has roles on"),
      table(["Username", "Name", ""], group.members.map((m) => [
        el("a", { href: `#/users/${m.id}` }, m.username), m.display_name, remove(m)]))),
    el("h2", {}, "Roles granted to the group"),
    el("div", { class: "panel" }, table(["Resource", "Role", "Granted", "By"],
      group.roles.map((g) => [g.resource_name || g.resource_id, el("strong", {}, g.role),
        el("span", { class: "nowrap" }, when(g.granted_at)), byWhom(people, g.granted_by)])),
    el("p", { class: "muted" }, "Grant and revoke roles on the ", el("a", { href: "#/roles" }, "Roles"), " page.")));
}

// Who granted: an administrator's username (their sub in the tooltip), else as recorded
// (`cli:<OS user>`, `operator:<sub>`).
function byWhom(people, actor) {
  if (!actor) return "–";
  return people.has(actor) ? el("span", { title: actor }, people.get(actor)) : el("span", { class: "mono" }, actor);
}

const PRINCIPAL_KINDS = [["user", "User"], ["group", "Group (each member)"], ["app", "App (client credentials)"]];

async function rolesPage() {
  const [grants, resources, users, groups, apps] = await Promise.all([api("GET", "/role-grants"),
    api("GET", "/resources"), api("GET", "/users"), api("GET", "/groups"), api("GET", "/apps")]);
  const withRoles = resources.filter((r) => r.roles.length);
  const people = new Map(users.map((u) => [u.id, u.username]));
  const choices = {
    user: users.map((u) => [u.id, u.username]),
    group: groups.map((g) => [g.id, g.name]),
    app: apps.filter((a) => !isConsoleApp(a.client_id)).map((a) => [a.client_id, a.name]),
  };
  const options = (pairs) => pairs.map(([value, text]) => el("option", { value }, text));
  const roleSelect = el("select", { name: "role", required: true });
  const principalSelect = el("select", { name: "principal", required: true });
  const resourceSelect = el("select", { name: "resource", required: true }, options(withRoles.map((r) => [r.id, r.name])));
  const kindSelect = el("select", { name: "principal_kind" }, options(PRINCIPAL_KINDS));
  const fillRoles = () => {
    const r = withRoles.find((x) => x.id === resourceSelect.value);
    roleSelect.replaceChildren(...options(r ? r.roles.map((role) => [role.name, role.name]) : []));
  };
  const fillPrincipals = () => principalSelect.replaceChildren(...options(choices[kindSelect.value]));
  resourceSelect.addEventListener("change", fillRoles);
  kindSelect.addEventListener("change", fillPrincipals);
  fillRoles();
  fillPrincipals();
  const form = el("form", { class: "panel", "aria-label": "Grant a role", onsubmit: async (event) => {
    event.preventDefault();
    const v = formValues(event.target);
    await act(() => api("POST", "/role-grants", v), `Granted ${v.role}`);
  } },
    el("h2", {}, "Grant a role"),
    withRoles.length ? [
      el("div", { class: "form-grid" },
        el("label", {}, "Resource", resourceSelect), el("label", {}, "Role", roleSelect),
        el("label", {}, "Grant to", kindSelect), el("label", {}, "Who", principalSelect)),
      el("p", { class: "muted" }, "It reaches their next token for the resource (", el("code", {}, "roles"), " claim)."),
      el("p", {}, el("button", { type: "submit", class: "button button-primary btn-small" }, "Grant role")),
    ] : el("p", { class: "muted" }, "No resource declares roles yet: add them to a resource on the ",
      el("a", { href: "#/resources" }, "Resources"), " page."));
  const kindLabel = { user: "user", group: "group", app: "app" };
  const revoke = (g) => button("Revoke", () => {
    const also = checked("revoke_tokens");
    const who = g.principal_name || g.principal_id;
    if (!confirm(`Take ${g.role} on ${g.resource_name} away from ${who}?${also ? " Their tokens for the resource are revoked now." : " Tokens already issued keep it until they expire."}`)) return;
    const params = new URLSearchParams({ resource: g.resource_id, role: g.role,
      principal_kind: g.principal_kind, principal: g.principal_id, revoke_tokens: String(also) });
    act(() => api("DELETE", `/role-grants?${params}`), `Revoked ${g.role} from ${who}`);
  }, "danger");
  const holder = (g) => {
    const name = g.principal_name || g.principal_id;
    const link = g.principal_kind === "user" ? el("a", { href: `#/users/${g.principal_id}` }, name)
      : g.principal_kind === "group" ? el("a", { href: `#/groups/${g.principal_id}` }, name) : name;
    return el("span", {}, link, " ", el("span", { class: "badge" }, kindLabel[g.principal_kind]));
  };
  show(el("h1", {}, "Roles"),
    el("div", { class: "panel" }, table(["Resource", "Declared roles", "Groups claim"],
      resources.map((r) => [r.name, roleNames(r.roles), r.include_groups ? "yes" : "no"]))),
    el("h2", {}, "Grants"),
    el("div", { class: "panel" },
      revokeBox("revoke_tokens", "Also revoke their tokens for the resource when revoking (a user's or each member's grants, an app's client-credentials tokens)"),
      table(["Resource", "Role", "Granted to", "Granted", "By", ""],
        grants.map((g) => [g.resource_name || g.resource_id, el("strong", {}, g.role), holder(g),
          el("span", { class: "nowrap" }, when(g.granted_at)), byWhom(people, g.granted_by), revoke(g)]))),
    form);
}

// --- identity domains (operators) ------------------------------------------------------------

function isConsoleApp(clientId) {
  return clientId === "tessera-console" || clientId.startsWith("tessera-console-");
}

// The largest name that sorts before every name starting with `query`, so the API's name
// pages (`after`) start at the first match: thousands of domains are never all loaded.
function justBefore(query) {
  const head = query.slice(0, -1);
  const last = query.slice(-1);
  if (last === "a") return head + "9" + "z".repeat(63);
  if (/[b-z1-9]/.test(last)) return head + String.fromCharCode(last.charCodeAt(0) - 1) + "z".repeat(63);
  return head;
}

// One page of domains in name order (the default domain left out: it is always listed first);
// with a query, those whose name starts with it. `next` continues the same listing.
async function domainPage(query, after) {
  const q = (query || "").trim().toLowerCase();
  const params = new URLSearchParams({ limit: "50" });
  const start = after || (q ? justBefore(q) : "");
  if (start) params.set("after", start);
  const page = await api("GET", `/domains?${params}`, undefined, true);
  const all = page.domains;
  const domains = all.filter((d) => !d.default && (!q || d.name.startsWith(q)));
  const more = page.next_after && (!q || all[all.length - 1].name.startsWith(q));
  return { domains, next: more ? page.next_after : null };
}

// A domain's admin API on this origin, or null when it is served elsewhere (its own host):
// the console may call only its own origin (CSP connect-src 'self').
function domainApi(view) {
  const issuer = new URL(view.issuer);
  if (issuer.origin !== location.origin) return null;
  return issuer.pathname.replace(/\/$/, "") + "/admin/v1";
}

function pick(view) {
  target = view && !view.default ? { name: view.name, display_name: view.display_name, api: domainApi(view) } : null;
  if (target) sessionStorage.setItem(`${STORE_KEY}.domain`, JSON.stringify(target));
  else sessionStorage.removeItem(`${STORE_KEY}.domain`);
  showTarget();
}

function showTarget() {
  const label = document.getElementById("domain-name");
  label.textContent = target ? target.display_name : "Default";
  document.getElementById("domain").classList.toggle("elsewhere", target !== null);
  const toggle = document.getElementById("domain-picker");
  if (toggle) toggle.setAttribute("aria-label", `Domain: ${label.textContent}. Choose another`);
}

// The operator's domain picker: "Default" and the domains, a page at a time, found by name.
function domainPicker() {
  const holder = document.getElementById("domain");
  const list = el("ul", { class: "domain-options", role: "list" });
  const more = el("p", { class: "domain-more" });
  const search = el("input", { type: "search", name: "domain-search", placeholder: "Find a domain by name",
    "aria-label": "Find a domain by name", autocomplete: "off" });
  const menu = el("div", { id: "domain-menu", class: "domain-menu", role: "dialog", "aria-label": "Choose a domain", hidden: true },
    search, list, more,
    el("p", { class: "muted small" }, el("a", { href: "#/domains", onclick: () => close() }, "Manage domains")));
  const toggle = el("button", { type: "button", id: "domain-picker", class: "domain-toggle",
    "aria-expanded": "false", "aria-controls": "domain-menu" }, "Change");
  const close = () => { menu.hidden = true; toggle.setAttribute("aria-expanded", "false"); };
  const option = (view) => {
    const elsewhere = domainApi(view) === null;
    const name = domainName(view);
    if (!view.enabled) {
      return el("li", {}, el("span", { class: "domain-option off" }, name, " ", el("span", { class: "badge off" }, "disabled")));
    }
    if (elsewhere) {
      // Its URLs are on its own host: the operator manages it from its own console there.
      return el("li", {}, el("a", { class: "domain-option", href: view.console, target: "_blank", rel: "noopener" },
        name, " ", el("span", { class: "badge" }, `open at ${view.host} ↗`)));
    }
    return el("li", {}, el("button", { type: "button", class: "domain-option",
      "aria-current": (target ? target.name === view.name : view.default) ? "true" : null,
      onclick: () => { pick(view); close(); route(); } }, name));
  };
  let query = "";
  const load = async (after) => {
    try {
      const page = await domainPage(query, after);
      if (!after) {
        list.replaceChildren();
        if (!query) list.append(option({ default: true, enabled: true, name: "default", issuer: config.issuer }));
      }
      list.append(...page.domains.map(option));
      if (!after && query && !page.domains.length) list.append(el("li", { class: "muted" }, `No domain starts with “${query}”.`));
      more.replaceChildren(page.next ? button("More domains", () => load(page.next)) : "");
    } catch (error) {
      // A read given up by a page drawn meanwhile (`draw`) is no error; the menu loads again when opened.
      if (error.name !== "AbortError") more.replaceChildren(el("span", { class: "error-text" }, error.message));
    }
  };
  let timer = null;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => { query = search.value.trim().toLowerCase(); load(); }, 200);
  });
  toggle.addEventListener("click", () => {
    const opening = menu.hidden;
    menu.hidden = !opening;
    toggle.setAttribute("aria-expanded", String(opening));
    if (opening) { search.value = ""; query = ""; load(); search.focus(); }
  });
  document.addEventListener("keydown", (event) => { if (event.key === "Escape" && !menu.hidden) { close(); toggle.focus(); } });
  document.addEventListener("click", (event) => { if (!holder.contains(event.target)) close(); });
  holder.append(toggle, menu);
  showTarget();
}

// A domain's display name and, when it differs, its name (the path segment).
function domainName(view, stacked = false) {
  const title = view.default ? "Default" : view.display_name;
  const name = title === view.name ? null : el("span", { class: "muted mono" }, view.name);
  return stacked ? el("span", {}, el("strong", {}, title), name ? [el("br"), name] : null)
    : el("span", {}, title, name ? [" ", name] : null);
}

function domainRow(d) {
  const status = d.enabled ? "active" : el("span", { class: "badge off" }, "disabled");
  const manage = d.enabled && domainApi(d) !== null
    ? button("Manage", () => { pick(d); location.hash = "#/users"; }) : null;
  const actions = d.default ? [manage] : [
    manage,
    d.enabled
      ? button("Disable", () => {
        if (!confirm(`Disable the identity domain ${d.name}? Every endpoint of it refuses requests until it is enabled again.`)) return;
        act(() => api("POST", `/domains/${d.name}/disable`, undefined, true), `Disabled ${d.name}`);
      })
      : button("Enable", () => act(() => api("POST", `/domains/${d.name}/enable`, undefined, true), `Enabled ${d.name}`)),
    button("Delete", async () => {
      const typed = prompt(`Delete the identity domain ${d.name} (${d.display_name})? Every token it issued is revoked and all its users, apps, keys and logs are removed; this cannot be undone.\n\nType ${d.name} to confirm.`);
      if (typed === null) return;
      if (typed.trim() !== d.name) { toast(`Not deleted: “${typed}” is not ${d.name}`, true); return; }
      const done = await act(() => api("DELETE", `/domains/${d.name}`, undefined, true));
      if (done) {
        if (target && target.name === d.name) pick(null);
        toast(`Deleted ${d.name} (${done.rows} rows removed)`);
      }
    }, "danger"),
  ];
  return [
    el("span", {}, domainName(d, true), d.default ? [" ", el("span", { class: "badge" }, "default")] : null),
    el("span", {}, el("code", {}, d.issuer), el("br"),
      el("a", { href: d.console, target: "_blank", rel: "noopener", class: "small" }, "Console ↗")),
    d.host ? el("code", {}, d.host) : el("span", { class: "muted" }, "–"),
    status, el("span", { class: "nowrap" }, when(d.created_at)),
    el("div", { class: "actions nowrap" }, actions)];
}

let domainQuery = "";

async function domainsPage(created) {
  const first = await domainPage(domainQuery);
  const rows = el("tbody", {});
  const more = el("p", {});
  const fill = (page) => {
    rows.append(...page.domains.map((d) => el("tr", {}, domainRow(d).map((c) => el("td", {}, c)))));
    more.replaceChildren(page.next ? button("More domains", async () => {
      try { fill(await domainPage(domainQuery, page.next)); } catch (error) { toast(error.message, true); }
    }) : "");
  };
  if (!domainQuery) {
    rows.append(el("tr", {}, domainRow({ default: true, enabled: true, name: "default", issuer: config.issuer,
      console: config.issuer + "/console/", host: null, created_at: null }).map((c) => el("td", {}, c))));
  }
  fill(first);
  if (!rows.children.length) rows.append(el("tr", {}, el("td", { colspan: 6, class: "muted" }, `No domain starts with “${domainQuery}”.`)));
  const finder = el("form", { class: "toolbar", role: "search", "aria-label": "Find domains", onsubmit: (event) => {
    event.preventDefault();
    domainQuery = formValues(event.target).q.trim().toLowerCase();
    draw(() => domainsPage());
  } },
    el("input", { type: "search", name: "q", value: domainQuery, placeholder: "Name starts with…", "aria-label": "Name starts with" }),
    el("button", { type: "submit", class: "button button-secondary btn-small" }, "Find"),
    domainQuery ? button("Show all", () => { domainQuery = ""; draw(() => domainsPage()); }) : null);
  const form = el("form", { class: "panel", "aria-label": "New identity domain", onsubmit: async (event) => {
    event.preventDefault();
    const v = formValues(event.target);
    const body = { name: v.name.trim().toLowerCase(), display_name: v.display_name || null, host: v.host || null };
    if (v.admin_username) {
      body.admin = { username: v.admin_username, password: v.admin_password, email: v.admin_email || null };
    }
    try {
      const made = await api("POST", "/domains", body, true);
      domainQuery = "";
      await draw(() => domainsPage(made));
      toast(`Created ${made.name}`);
    } catch (error) { toast(error.message, true); }
  } },
    el("h2", {}, "New identity domain"),
    el("div", { class: "form-grid" },
      field("Name (its URL path)", "name", { required: true, autocomplete: "off", pattern: "[a-z0-9][a-z0-9\\-]{0,62}",
        title: "lower-case letters, digits and hyphens", placeholder: "acme" }),
      field("Display name", "display_name", { placeholder: "Acme Corporation" }),
      field("Host name (optional)", "host", { placeholder: "login.acme.example", autocomplete: "off" })),
    el("h3", {}, "First administrator"),
    el("div", { class: "form-grid" },
      field("Username", "admin_username", { autocomplete: "off" }),
      field("Password", "admin_password", { type: "password", autocomplete: "new-password", minlength: 12 }),
      field("Email", "admin_email", { type: "email", autocomplete: "off" })),
    el("p", { class: "muted" }, "Without a first administrator only operators can manage the new domain."),
    el("p", {}, el("button", { type: "submit", class: "button button-primary btn-small" }, "Create domain")));
  const notice = created ? el("div", { class: "notice", role: "status" },
    el("strong", {}, `Created ${created.display_name} (${created.name}).`), " ",
    created.admin ? `Its administrator ${created.admin.username} signs in at ` : "Its console: ",
    el("a", { href: created.console, target: "_blank", rel: "noopener" }, created.console)) : null;
  show(el("h1", {}, "Identity domains"), notice, finder,
    el("div", { class: "panel" }, el("table", { class: "data" },
      el("thead", {}, el("tr", {}, ["Domain", "Issuer", "Host", "Status", "Created", ""].map((h) => el("th", { scope: "col" }, h)))),
      rows), more),
    form);
}

// Draw a page (`work` reads it and shows it): a newer drawing gives up this one's reads, so a
// slow page never replaces the one the administrator moved on to; #main is aria-busy meanwhile
// (assistive technology, and the browser tests, know the page is being drawn).
async function draw(work) {
  if (drawing) drawing.abort();
  const mine = drawing = new AbortController();
  const main = document.getElementById("main");
  main.setAttribute("aria-busy", "true");
  try {
    await work();
  } catch (error) {
    if (!mine.signal.aborted) show(el("div", { class: "alert alert-error", role: "alert" }, error.message));
  } finally {
    if (drawing === mine) { drawing = null; main.removeAttribute("aria-busy"); }
  }
}

async function route() {
  const hash = location.hash || "#/users";
  for (const link of document.querySelectorAll(".console-bar nav a")) {
    link.toggleAttribute("aria-current", hash.startsWith(link.getAttribute("href")));
    if (link.hasAttribute("aria-current")) link.setAttribute("aria-current", "page");
  }
  await draw(() => pageFor(hash));
}

function pageFor(hash) {
  const user = hash.match(/^#\/users\/([\w-]+)$/);
  const group = hash.match(/^#\/groups\/([\w-]+)$/);
  const provider = hash.match(/^#\/providers\/([\w-]+)$/);
  if (user) return userPage(user[1]);
  if (group) return groupPage(group[1]);
  if (provider) return providerPage(provider[1]);
  if (hash.startsWith("#/providers")) return providersPage();
  if (hash.startsWith("#/groups")) return groupsPage();
  if (hash.startsWith("#/roles")) return rolesPage();
  if (hash.startsWith("#/apps")) return appsPage();
  if (hash.startsWith("#/resources")) return resourcesPage();
  if (hash.startsWith("#/keys")) return keysPage();
  if (hash.startsWith("#/registration-tokens")) return registrationTokensPage();
  if (hash.startsWith("#/trusted-issuers")) return trustedIssuersPage();
  if (hash.startsWith("#/sign-in")) return policyPage();
  if (hash.startsWith("#/audit")) return auditPage();
  if (hash.startsWith("#/domains") && operator) return domainsPage();
  if (hash.startsWith("#/domains")) throw new Error("Only operators (administrators of the default domain) manage identity domains.");
  return usersPage();
}

async function main() {
  // The sign-in policy's page, in the sections before the audit log.
  const nav = document.querySelector(".console-bar nav");
  nav.insertBefore(el("a", { href: "#/sign-in" }, "Sign-in policy"), nav.querySelector('a[href="#/audit"]'));
  nav.insertBefore(el("a", { href: "#/registration-tokens" }, "Registration"), nav.querySelector('a[href="#/audit"]'));
  nav.insertBefore(el("a", { href: "#/trusted-issuers" }, "Trusted issuers"), nav.querySelector('a[href="#/audit"]'));
  nav.insertBefore(el("a", { href: "#/providers" }, "Sign-in providers"), nav.querySelector('a[href="#/audit"]'));
  await discover();
  const query = new URLSearchParams(location.search);
  document.getElementById("signout").addEventListener("click", () => {
    // With the ID token as hint the identity domain signs out without asking again.
    const params = new URLSearchParams({ client_id: CLIENT_ID, post_logout_redirect_uri: redirectUri });
    if (token && token.id_token) params.set("id_token_hint", token.id_token);
    token = null;
    sessionStorage.removeItem(`${STORE_KEY}.domain`);
    location.assign(`${config.end_session_endpoint}?${params}`);
  });
  try {
    if (query.has("code") || query.has("error")) await finishSignIn(query);
    if (!token) { await signIn(); return; }
  } catch (error) {
    show(el("div", { class: "alert alert-error", role: "alert" }, error.message),
      el("p", {}, button("Sign in again", signIn, "primary")));
    return;
  }
  if (operator) {
    // The domain picked before signing in again (an expired token) stays picked.
    target = JSON.parse(sessionStorage.getItem(`${STORE_KEY}.domain`) || "null");
    document.getElementById("nav-domains").hidden = false;
    domainPicker();
  }
  window.addEventListener("hashchange", route);
  route();
}

main();
