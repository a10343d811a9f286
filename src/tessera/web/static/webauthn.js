// Passkeys on Tessera's pages (W3C WebAuthn Level 3): a button with data-webauthn="get" or
// "create" reads its options (JSON with base64url binary fields, as the server wrote them),
// calls navigator.credentials, and posts the result, as JSON, in its form's `credential` field.
// The server checks everything; this script only carries bytes.
"use strict";

(function () {
  function fromB64url(value) {
    const base64 = value.replace(/-/g, "+").replace(/_/g, "/");
    const padded = base64 + "===".slice((base64.length + 3) % 4);
    const binary = atob(padded);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  }

  function toB64url(buffer) {
    const bytes = new Uint8Array(buffer);
    let binary = "";
    for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function withIds(list) {
    return (list || []).map(function (c) { return Object.assign({}, c, { id: fromB64url(c.id) }); });
  }

  function publicKeyOptions(mode, json) {
    const options = Object.assign({}, json, { challenge: fromB64url(json.challenge) });
    if (mode === "create") {
      options.user = Object.assign({}, json.user, { id: fromB64url(json.user.id) });
      options.excludeCredentials = withIds(json.excludeCredentials);
    } else {
      options.allowCredentials = withIds(json.allowCredentials);
    }
    return options;
  }

  function serialise(credential) {
    const r = credential.response;
    const response = { clientDataJSON: toB64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toB64url(r.attestationObject);
      if (r.getTransports) response.transports = r.getTransports();
    } else {
      response.authenticatorData = toB64url(r.authenticatorData);
      response.signature = toB64url(r.signature);
      if (r.userHandle) response.userHandle = toB64url(r.userHandle);
    }
    return JSON.stringify({
      id: credential.id,
      rawId: toB64url(credential.rawId),
      type: credential.type,
      response: response,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
    });
  }

  function showError(message) {
    const box = document.getElementById("passkey-error");
    if (!box) return;
    box.textContent = message;
    box.hidden = false;
  }

  function explain(error) {
    if (error && error.name === "NotAllowedError") return "The passkey request was cancelled or timed out. Try again.";
    if (error && error.name === "InvalidStateError") return "This device already holds a passkey for your account.";
    if (error && error.name === "SecurityError") return "Passkeys cannot be used on this address.";
    return "Your browser could not use a passkey here. Try another way.";
  }

  async function run(button) {
    const mode = button.dataset.webauthn;
    const form = document.getElementById(button.dataset.form);
    const json = JSON.parse(document.getElementById(button.dataset.options).textContent);
    const publicKey = publicKeyOptions(mode, json);
    button.disabled = true;
    try {
      const credential = mode === "create"
        ? await navigator.credentials.create({ publicKey: publicKey })
        : await navigator.credentials.get({ publicKey: publicKey });
      form.elements.namedItem("credential").value = serialise(credential);
      form.submit();
    } catch (error) {
      showError(explain(error));
      button.disabled = false;
    }
  }

  document.querySelectorAll("[data-webauthn]").forEach(function (button) {
    if (!window.PublicKeyCredential) {
      button.disabled = true;
      button.title = "This browser does not support passkeys";
      return;
    }
    button.addEventListener("click", function () { run(button); });
  });
})();
