// authbench pages: the chip through WebAuthn (Level 3 §5.1.3, §5.1.4).
// A form marked data-webauthn="create" or "get" carries the relying party's
// options as JSON in data-options; on submit this runs
// navigator.credentials.create or get, puts the response's JSON in the
// form's credential field and posts the form. Messages come, in the page's
// language, from the form's data-msg-* attributes.
(function () {
  'use strict';

  function toBuffer(s) {
    s = s.replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) { s += '='; }
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }

  function toBase64url(buf) {
    var bytes = new Uint8Array(buf);
    var s = '';
    for (var i = 0; i < bytes.length; i++) { s += String.fromCharCode(bytes[i]); }
    return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function descriptors(list) {
    return (list || []).map(function (c) {
      var d = { type: c.type, id: toBuffer(c.id) };
      if (c.transports) { d.transports = c.transports; }
      return d;
    });
  }

  function creationOptions(o) {
    var p = Object.assign({}, o);
    p.challenge = toBuffer(o.challenge);
    p.user = Object.assign({}, o.user, { id: toBuffer(o.user.id) });
    p.excludeCredentials = descriptors(o.excludeCredentials);
    if (!p.timeout) { delete p.timeout; }
    if (!p.hints) { delete p.hints; }
    return p;
  }

  function requestOptions(o) {
    var p = Object.assign({}, o);
    p.challenge = toBuffer(o.challenge);
    p.allowCredentials = descriptors(o.allowCredentials);
    if (!p.timeout) { delete p.timeout; }
    if (!p.hints) { delete p.hints; }
    return p;
  }

  function common(c) {
    return {
      id: c.id,
      rawId: toBase64url(c.rawId),
      type: c.type,
      authenticatorAttachment: c.authenticatorAttachment || undefined,
      clientExtensionResults: c.getClientExtensionResults ? c.getClientExtensionResults() : {}
    };
  }

  function registrationJSON(c) {
    var out = common(c);
    var r = c.response;
    out.response = {
      clientDataJSON: toBase64url(r.clientDataJSON),
      attestationObject: toBase64url(r.attestationObject)
    };
    if (r.getTransports) { out.response.transports = r.getTransports(); }
    return out;
  }

  function assertionJSON(c) {
    var out = common(c);
    var r = c.response;
    out.response = {
      clientDataJSON: toBase64url(r.clientDataJSON),
      authenticatorData: toBase64url(r.authenticatorData),
      signature: toBase64url(r.signature)
    };
    if (r.userHandle && r.userHandle.byteLength) { out.response.userHandle = toBase64url(r.userHandle); }
    return out;
  }

  function say(form, key) {
    var p = form.querySelector('.webauthn-status');
    if (p) { p.textContent = form.getAttribute('data-msg-' + key) || ''; }
  }

  function run(form, ev) {
    var field = form.querySelector('input[name="credential"]');
    if (!field || field.value) { return; }
    ev.preventDefault();
    if (!window.PublicKeyCredential || !navigator.credentials) { say(form, 'unsupported'); return; }
    var options;
    try { options = JSON.parse(form.getAttribute('data-options')); } catch (e) { say(form, 'failed'); return; }
    var create = form.getAttribute('data-webauthn') === 'create';
    var button = form.querySelector('button[type="submit"]');
    if (button) { button.disabled = true; }
    say(form, 'waiting');
    var pending = create ?
      navigator.credentials.create({ publicKey: creationOptions(options) }) :
      navigator.credentials.get({ publicKey: requestOptions(options) });
    pending.then(function (c) {
      field.value = JSON.stringify(create ? registrationJSON(c) : assertionJSON(c));
      say(form, 'sending');
      form.submit();
    }).catch(function (e) {
      if (button) { button.disabled = false; button.focus(); }
      var name = e && e.name;
      say(form, name === 'InvalidStateError' ? 'registered' : name === 'NotAllowedError' ? 'cancelled' : 'failed');
    });
  }

  document.addEventListener('submit', function (ev) {
    var form = ev.target;
    if (form && form.hasAttribute && form.hasAttribute('data-webauthn')) { run(form, ev); }
  });
}());
