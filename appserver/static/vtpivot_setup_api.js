/*
 * vtpivot setup page: the REST calls and the validation, without any DOM.
 *
 * Every splunkd call goes through one `request(method, path, params)` function that returns
 * a Promise of {status, data} (or rejects with an Error carrying .status and .data). In Splunk
 * it is jqueryRequest() below (splunkweb's /splunkd/__raw proxy with the CSRF form key); in
 * tests it is anything with that shape. Paths are relative to servicesNS/nobody/vtpivot/.
 *
 * The API key is only ever sent (storage/passwords); it is never read back: whether a secret
 * is stored comes from the app's own endpoint (vtpivot/test_connection action=status), which
 * answers true/false, because reading storage/passwords would hand the browser the clear text.
 *
 * Loadable as an AMD module (Splunk's require.js) and as a CommonJS module (node tests).
 */
(function (root, factory) {
    if (typeof define === 'function' && define.amd) {
        define([], factory);
    } else if (typeof module === 'object' && module.exports) {
        module.exports = factory();
    } else {
        root.VtpivotSetupApi = factory();
    }
}(this, function () {
    'use strict';

    var APP = 'vtpivot';
    var REALM = 'vtpivot';
    var SECRET_USERS = { apiKey: 'api_key', proxyPassword: 'proxy_password' };
    // Who may read the secrets (Splunk 9.x checks each secret's read ACL): the analysts'
    // role and the admins. Writes: admins only.
    var SECRET_ACL = {
        sharing: 'app',
        owner: 'nobody',
        'perms.read': 'admin,sc_admin,vtpivot_user',
        'perms.write': 'admin,sc_admin'
    };
    // A public key's published quota; premium figures come from the customer's contract.
    var TIER_PRESETS = { public: { per_minute: '4', per_day: '500', per_month: '0' } };
    var MASK = '\u2022\u2022\u2022\u2022\u2022\u2022\u2022\u2022 (stored)';

    // Form field -> vtpivot.conf [stanza] key (the keys of default/vtpivot.conf).
    var FIELDS = [
        { name: 'tier', stanza: 'api', key: 'tier', kind: 'choice', choices: ['public', 'premium'] },
        { name: 'api_url', stanza: 'api', key: 'url', kind: 'api_url' },
        { name: 'user_id', stanza: 'api', key: 'user_id', kind: 'user_id', optional: true },
        { name: 'per_minute', stanza: 'limits', key: 'per_minute', kind: 'int', min: 1, max: 100000 },
        { name: 'per_day', stanza: 'limits', key: 'per_day', kind: 'int', min: 1, max: 100000000 },
        { name: 'per_month', stanza: 'limits', key: 'per_month', kind: 'int', min: 0, max: 1000000000 },
        { name: 'proxy_url', stanza: 'proxy', key: 'url', kind: 'proxy_url', optional: true },
        { name: 'proxy_username', stanza: 'proxy', key: 'username', kind: 'text', optional: true },
        { name: 'ca_bundle', stanza: 'tls', key: 'ca_bundle', kind: 'ca_bundle', optional: true },
        { name: 'ttl_domain', stanza: 'cache', key: 'ttl_domain', kind: 'int', min: 0, max: 31536000 },
        { name: 'ttl_ip', stanza: 'cache', key: 'ttl_ip', kind: 'int', min: 0, max: 31536000 },
        { name: 'ttl_file', stanza: 'cache', key: 'ttl_file', kind: 'int', min: 0, max: 31536000 },
        { name: 'ttl_not_found', stanza: 'cache', key: 'ttl_not_found', kind: 'int', min: 0, max: 31536000 },
        { name: 'backend', stanza: 'cache', key: 'backend', kind: 'choice', choices: ['sqlite', 'redis', 'file'] },
        { name: 'redis_url', stanza: 'cache', key: 'redis_url', kind: 'redis_url', optional: true },
        { name: 'never_send_domains', stanza: 'indicators', key: 'never_send_domains', kind: 'domains', optional: true }
    ];

    var DOMAIN_RE = /^(\*\.)?([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.?$/i;
    var HOSTPORT_RE = /^([a-z0-9.-]+|\[[0-9a-f:.]+\])(:\d{1,5})?$/i;
    var USER_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
    var PEM_RE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/;

    function parseUrl(text, schemes) {
        var m = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)$/i.exec(text);
        if (!m) { return null; }
        var scheme = m[1].toLowerCase();
        if (schemes.indexOf(scheme) < 0) { return null; }
        return { scheme: scheme, authority: m[2], path: m[3] };
    }

    function isLoopback(hostport) {
        return /^(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/i.test(hostport);
    }

    /* One field's value -> an error message, or '' when valid. */
    function checkField(field, raw, values) {
        var text = (raw === undefined || raw === null) ? '' : String(raw).trim();
        if (!text) {
            if (field.kind === 'redis_url' && values.backend === 'redis') {
                return 'A Redis URL is required when the shared backend is Redis.';
            }
            return field.optional ? '' : 'Required.';
        }
        if (/[\r\n]/.test(text) && field.kind !== 'ca_bundle') {
            return 'Must be a single line.';
        }
        var url;
        switch (field.kind) {
        case 'int':
            if (!/^\d+$/.test(text)) { return 'Enter a whole number (digits only).'; }
            var n = parseInt(text, 10);
            if (n < field.min || n > field.max) {
                return 'Enter a number between ' + field.min + ' and ' + field.max + '.';
            }
            return '';
        case 'choice':
            return field.choices.indexOf(text) < 0 ? 'Choose one of: ' + field.choices.join(', ') + '.' : '';
        case 'api_url':
            url = parseUrl(text, ['https', 'http']);
            if (!url || !HOSTPORT_RE.test(url.authority)) {
                return 'Enter a URL such as https://www.virustotal.com/api/v3';
            }
            if (url.scheme === 'http' && !isLoopback(url.authority)) {
                return 'Use https:// (plain http is only accepted for a local test server).';
            }
            return '';
        case 'proxy_url':
            url = parseUrl(text, ['http', 'https']);
            if (!url) { return 'Enter a proxy URL such as http://proxy.example.com:3128'; }
            if (url.authority.indexOf('@') >= 0) {
                return 'Do not put credentials in the URL: use the proxy user and password fields.';
            }
            if (!HOSTPORT_RE.test(url.authority)) { return 'The proxy host or port is not valid.'; }
            return '';
        case 'redis_url':
            url = parseUrl(text, ['redis', 'rediss', 'unix']);
            return url ? '' : 'Enter a Redis URL such as redis://redis.example.com:6379/0';
        case 'user_id':
            if (/^[0-9a-f]{64}$/i.test(text)) {
                return 'This looks like an API key: enter your VirusTotal user name instead.';
            }
            return USER_ID_RE.test(text) ? '' : 'Letters, digits, ".", "_" and "-" only.';
        case 'ca_bundle':
            if (text.indexOf('-----BEGIN') >= 0) {
                return PEM_RE.test(text) ? '' : 'Paste whole certificates, from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----.';
            }
            if (/[\r\n]/.test(text)) { return 'Enter one file path, or paste PEM certificates.'; }
            return (/^(\/|[A-Za-z]:[\\/])/.test(text)) ? '' : 'Enter an absolute path to a PEM file, or paste the PEM text.';
        case 'domains':
            var bad = splitList(text).filter(function (d) { return !DOMAIN_RE.test(d); });
            return bad.length ? 'Not a domain: ' + bad.slice(0, 3).join(', ') : '';
        default:
            return '';
        }
    }

    function splitList(text) {
        return String(text).split(/[\s,]+/).filter(function (x) { return x; });
    }

    /* Validate the form values: {name: message} for each invalid field ({} when all good). */
    function validate(values, secrets) {
        var errors = {};
        FIELDS.forEach(function (field) {
            var message = checkField(field, values[field.name], values);
            if (message) { errors[field.name] = message; }
        });
        var key = secrets && secrets.api_key;
        if (key) {
            if (/\s/.test(key)) {
                errors.api_key = 'The key contains spaces or line breaks: paste it again.';
            } else if (key.length < 20 || key.length > 256) {
                errors.api_key = 'This does not look like a VirusTotal API key (64 characters).';
            }
        }
        if (secrets && secrets.proxy_password && !String(values.proxy_url || '').trim()) {
            errors.proxy_password = 'A proxy password needs a proxy URL.';
        }
        return errors;
    }

    /* A conf value is one line: pasted PEM is stored with its line breaks as spaces
       (the app re-wraps it when it builds the TLS context). */
    function confValue(field, raw) {
        var text = (raw === undefined || raw === null) ? '' : String(raw).trim();
        if (field.kind === 'ca_bundle') { return text.replace(/\s*[\r\n]+\s*/g, ' '); }
        if (field.kind === 'domains') { return splitList(text).join(','); }
        return text;
    }

    /* {stanza: {key: value}} from the form values. */
    function toStanzas(values) {
        var stanzas = {};
        FIELDS.forEach(function (field) {
            if (!(field.name in values)) { return; }
            stanzas[field.stanza] = stanzas[field.stanza] || {};
            stanzas[field.stanza][field.key] = confValue(field, values[field.name]);
        });
        return stanzas;
    }

    /* Form values from configs/conf-vtpivot entries. */
    function fromEntries(entries) {
        var byStanza = {};
        (entries || []).forEach(function (entry) { byStanza[entry.name] = entry.content || {}; });
        var values = {};
        FIELDS.forEach(function (field) {
            var content = byStanza[field.stanza] || {};
            var value = content[field.key];
            values[field.name] = (value === undefined || value === null) ? '' : String(value);
        });
        if (values.ca_bundle.indexOf('-----BEGIN') >= 0) {  // show stored PEM as PEM again
            values.ca_bundle = values.ca_bundle
                .replace(/(-----BEGIN CERTIFICATE-----|-----END CERTIFICATE-----)/g, '\n$1\n')
                .replace(/\n\s+|\s+\n/g, '\n').replace(/^\n+|\n+$/g, '');
        }
        return values;
    }

    function secretName(user) { return REALM + ':' + user + ':'; }

    function secretPath(user) {
        return 'storage/passwords/' + encodeURIComponent(secretName(user));
    }

    function messageOf(error) {
        var data = error && error.data;
        if (data && data.messages && data.messages.length) { return data.messages[0].text; }
        if (data && data.message) { return data.message; }
        return (error && error.message) || 'request failed';
    }

    /* The REST calls of the page, over any request function. */
    function createApi(request) {
        function loadSettings() {
            return request('GET', 'configs/conf-vtpivot', { count: 0 }).then(function (res) {
                return fromEntries(res.data && res.data.entry);
            });
        }

        function saveSettings(values) {
            var stanzas = toStanzas(values);
            var names = Object.keys(stanzas);
            // One stanza after another: splunkd serializes conf writes anyway.
            return names.reduce(function (chain, stanza) {
                return chain.then(function () {
                    return request('POST', 'configs/conf-vtpivot/' + encodeURIComponent(stanza),
                        stanzas[stanza]);
                });
            }, Promise.resolve()).then(function () { return names; });
        }

        /* Which secrets are stored: {api_key: bool, proxy_password: bool}, never values. */
        function secretStatus() {
            return request('POST', 'vtpivot/test_connection', { action: 'status' }).then(function (res) {
                var data = res.data || {};
                if (!data.ok) {
                    var err = new Error(data.message || 'cannot tell which secrets are stored');
                    err.data = data;
                    throw err;
                }
                return data.secrets || {};
            });
        }

        /* Create or update a secret, then set its ACL. Resolves to nothing: splunkd's answer
           echoes the clear text, which the page has no reason to keep. */
        function saveSecret(user, value, exists) {
            var update = function () {
                return request('POST', secretPath(user), { password: value });
            };
            var create = function () {
                return request('POST', 'storage/passwords',
                    { name: user, realm: REALM, password: value })
                    .catch(function (error) {
                        if (error && error.status === 409) { return update(); }
                        throw error;
                    });
            };
            return (exists ? update() : create()).then(function () {
                return request('POST', secretPath(user) + '/acl', SECRET_ACL);
            }).then(function () { return undefined; });
        }

        function deleteSecret(user) {
            return request('DELETE', secretPath(user), {}).catch(function (error) {
                if (error && error.status === 404) { return null; }
                throw error;
            }).then(function () { return undefined; });
        }

        function markConfigured() {
            return request('POST', 'apps/local/' + APP, { configured: '1' });
        }

        function appStatus() {
            return request('GET', 'apps/local/' + APP, {}).then(function (res) {
                var entry = res.data && res.data.entry && res.data.entry[0];
                var configured = entry && entry.content && entry.content.configured;
                return { configured: configured === true || configured === '1' || configured === 1 };
            });
        }

        function testConnection(userId) {
            var params = { action: 'test' };
            if (userId) { params.user_id = userId; }
            return request('POST', 'vtpivot/test_connection', params).then(function (res) {
                return res.data;
            });
        }

        /* Validate, write the settings, the secrets (only those typed in) and the
           configured flag. Rejects with {errors} when the form is not valid. */
        function saveAll(values, secrets, stored, options) {
            secrets = secrets || {};
            stored = stored || {};
            options = options || {};
            var errors = validate(values, secrets);
            if (Object.keys(errors).length) {
                var invalid = new Error('Some values are not valid.');
                invalid.errors = errors;
                return Promise.reject(invalid);
            }
            var written = [];
            return saveSettings(values).then(function () {
                if (!secrets.api_key) { return null; }
                written.push(SECRET_USERS.apiKey);
                return saveSecret(SECRET_USERS.apiKey, secrets.api_key, stored.api_key);
            }).then(function () {
                if (secrets.proxy_password) {
                    written.push(SECRET_USERS.proxyPassword);
                    return saveSecret(SECRET_USERS.proxyPassword, secrets.proxy_password,
                        stored.proxy_password);
                }
                if (options.clearProxyPassword && stored.proxy_password) {
                    written.push(SECRET_USERS.proxyPassword);
                    return deleteSecret(SECRET_USERS.proxyPassword);
                }
                return null;
            }).then(markConfigured).then(function () {
                return { secrets: written };
            });
        }

        return {
            loadSettings: loadSettings,
            saveSettings: saveSettings,
            secretStatus: secretStatus,
            saveSecret: saveSecret,
            deleteSecret: deleteSecret,
            markConfigured: markConfigured,
            appStatus: appStatus,
            testConnection: testConnection,
            saveAll: saveAll
        };
    }

    /* request() over jQuery.ajax through splunkweb's proxy, e.g. baseUrl =
       Splunk.util.make_url('/splunkd/__raw/servicesNS/nobody/vtpivot/'). */
    function jqueryRequest($, baseUrl, formKey) {
        return function (method, path, params) {
            return new Promise(function (resolve, reject) {
                var url = baseUrl + path + (path.indexOf('?') >= 0 ? '&' : '?') + 'output_mode=json';
                $.ajax({
                    url: url,
                    type: method,
                    data: params || {},
                    dataType: 'json',
                    cache: false,
                    headers: { 'X-Splunk-Form-Key': formKey, 'X-Requested-With': 'XMLHttpRequest' }
                }).done(function (data, _text, xhr) {
                    resolve({ status: xhr.status, data: data });
                }).fail(function (xhr) {
                    var data = null;
                    try { data = JSON.parse(xhr.responseText); } catch (e) { data = null; }
                    var error = new Error('HTTP ' + xhr.status);
                    error.status = xhr.status;
                    error.data = data;
                    error.message = messageOf(error);
                    reject(error);
                });
            });
        };
    }

    return {
        APP: APP,
        REALM: REALM,
        SECRET_USERS: SECRET_USERS,
        SECRET_ACL: SECRET_ACL,
        TIER_PRESETS: TIER_PRESETS,
        MASK: MASK,
        FIELDS: FIELDS,
        checkField: checkField,
        validate: validate,
        toStanzas: toStanzas,
        fromEntries: fromEntries,
        secretName: secretName,
        messageOf: messageOf,
        createApi: createApi,
        jqueryRequest: jqueryRequest
    };
}));
