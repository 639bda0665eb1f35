/*
 * vtpivot setup page (default/data/ui/views/vtpivot_setup.xml): wires the form to the REST
 * calls in vtpivot_setup_api.js. All server text is rendered with .text(), never as HTML.
 * The key field is write-only: it is cleared after a save and never filled from the server.
 */
require([
    'jquery',
    'splunk.util',
    '../app/vtpivot/vtpivot_setup_api',
    'splunkjs/mvc/simplexml/ready!'
], function ($, splunkUtil, setupApi) {
    'use strict';

    var root = $('#vtp-setup');
    var base = splunkUtil.make_url('/splunkd/__raw/servicesNS/nobody/' + setupApi.APP + '/');
    var api = setupApi.createApi(setupApi.jqueryRequest($, base, splunkUtil.getFormKey()));
    var stored = {};  // {api_key: bool, proxy_password: bool}

    function field(name) { return $('#vtp-' + name); }

    function readForm() {
        var values = {};
        setupApi.FIELDS.forEach(function (f) { values[f.name] = field(f.name).val(); });
        return values;
    }

    function fillForm(values) {
        setupApi.FIELDS.forEach(function (f) { field(f.name).val(values[f.name]); });
        toggleRedis();
    }

    function showErrors(errors) {
        root.find('.vtp-error').text('');
        root.find('.vtp-invalid').removeClass('vtp-invalid');
        Object.keys(errors || {}).forEach(function (name) {
            $('#vtp-' + name + '-error').text(errors[name]);
            field(name).addClass('vtp-invalid');
        });
        var first = Object.keys(errors || {})[0];
        if (first) { field(first).trigger('focus'); }
    }

    function say(kind, text) {
        $('#vtp-message').attr('class', 'vtp-message vtp-' + kind).text(text || '');
    }

    function showStored() {
        var key = field('api_key');
        key.attr('placeholder', stored.api_key ? setupApi.MASK : 'Paste your VirusTotal API key');
        $('#vtp-api_key-stored').text(stored.api_key ? 'A key is stored.' : 'No key stored yet.')
            .toggleClass('vtp-none', !stored.api_key);
        field('proxy_password').attr('placeholder', stored.proxy_password ? setupApi.MASK : '');
        $('#vtp-proxy_password-stored').text(stored.proxy_password ? 'A proxy password is stored.' : '');
        $('#vtp-proxy_password-clear').closest('label').toggle(!!stored.proxy_password);
    }

    function toggleRedis() {
        var redis = field('backend').val() === 'redis';
        field('redis_url').prop('disabled', !redis).closest('.vtp-field').toggleClass('vtp-muted', !redis);
    }

    function applyTierPreset() {
        var preset = setupApi.TIER_PRESETS[field('tier').val()];
        if (preset) {
            Object.keys(preset).forEach(function (name) { field(name).val(preset[name]); });
            say('info', 'Budget set to a public key\'s quota (4 per minute, 500 per day).');
        } else {
            say('info', 'Premium key: enter the per-minute, per-day and per-month figures of your contract.');
        }
    }

    function refreshStatus() {
        return api.secretStatus().then(function (secrets) {
            stored = secrets;
            showStored();
        }, function (error) {
            $('#vtp-api_key-stored').text('Cannot tell whether a key is stored: ' + setupApi.messageOf(error));
        });
    }

    function banner(configured) {
        $('#vtp-banner').attr('class', 'vtp-banner ' + (configured ? 'vtp-ok' : 'vtp-warn'))
            .text(configured ? 'The app is configured.' :
                'The app is not configured yet: enter the API key and save.');
    }

    function busy(on) {
        root.attr('aria-busy', on ? 'true' : 'false');
        $('#vtp-save, #vtp-test').prop('disabled', on);
    }

    function save() {
        var secrets = { api_key: field('api_key').val(), proxy_password: field('proxy_password').val() };
        var options = { clearProxyPassword: $('#vtp-proxy_password-clear').prop('checked') };
        var errors = setupApi.validate(readForm(), secrets);
        showErrors(errors);
        if (Object.keys(errors).length) {
            say('error', 'Some values are not valid: see the messages in red.');
            return;
        }
        busy(true);
        say('info', 'Saving\u2026');
        api.saveAll(readForm(), secrets, stored, options).then(function (result) {
            field('api_key').val('');
            field('proxy_password').val('');
            $('#vtp-proxy_password-clear').prop('checked', false);
            banner(true);
            say('success', 'Saved.' + (result.secrets.length ? ' Credentials updated: ' +
                result.secrets.join(', ') + '.' : ''));
            return refreshStatus();
        }, function (error) {
            if (error.errors) { showErrors(error.errors); }
            say('error', 'Not saved: ' + setupApi.messageOf(error) + (error.status === 403 ?
                ' (your role may not change this app\'s settings or secrets)' : ''));
        }).then(function () { busy(false); });
    }

    function row(table, cells) {
        var tr = $('<tr>');
        cells.forEach(function (text) { tr.append($('<td>').text(text)); });
        table.append(tr);
    }

    function showResult(result) {
        var box = $('#vtp-result').empty().attr('class', 'vtp-result ' + (result.ok ? 'vtp-ok' : 'vtp-fail'));
        var head = $('<div class="vtp-result-head">');
        head.append($('<strong>').text(result.ok ? 'Connection OK' : 'Connection failed'));
        if (result.code) { head.append(' ', $('<code class="vtp-code">').text(result.code)); }
        box.append(head, $('<div>').text(result.message || ''));
        if (result.fix) { box.append($('<div class="vtp-fix">').text('Fix: ' + result.fix)); }
        if (result.usage) {
            var table = $('<table class="vtp-usage"><thead><tr><th>App budget</th><th>Used</th><th>Budget</th></tr></thead></table>');
            var body = $('<tbody>').appendTo(table);
            ['minute', 'day', 'month'].forEach(function (w) {
                var u = result.usage[w] || {};
                row(body, ['This ' + w, u.used === null || u.used === undefined ? '\u2013' : String(u.used),
                    u.budget ? String(u.budget) : 'no limit']);
            });
            box.append(table);
        } else if (result.ok) {
            box.append($('<div class="vtp-help">').text('The app\'s own call counters are not available.'));
        }
        if (result.vt_quotas) {
            var vt = $('<table class="vtp-usage"><thead><tr><th>VirusTotal counters</th><th>Used</th><th>Allowed</th></tr></thead></table>');
            var vbody = $('<tbody>').appendTo(vt);
            Object.keys(result.vt_quotas).forEach(function (name) {
                var q = result.vt_quotas[name];
                row(vbody, [name, String(q.used), String(q.allowed)]);
            });
            box.append(vt);
        }
        if (result.vt_quotas_note) { box.append($('<div class="vtp-help">').text(result.vt_quotas_note)); }
        if (result.calls !== undefined) {
            box.append($('<div class="vtp-help">').text('This test used ' + result.calls +
                ' call' + (result.calls === 1 ? '' : 's') + ' of the budget (' + (result.api_url || '') + ').'));
        }
    }

    function test() {
        var userId = $.trim(field('user_id').val());
        var message = setupApi.checkField(setupApi.FIELDS.filter(function (f) { return f.name === 'user_id'; })[0], userId, {});
        if (message) { showErrors({ user_id: message }); return; }
        busy(true);
        say('info', 'Testing the saved settings\u2026');
        api.testConnection(userId).then(function (result) {
            say('', '');
            showResult(result);
        }, function (error) {
            showResult({ ok: false, code: error.status === 403 ? 'HTTP 403' : '', message:
                setupApi.messageOf(error) + (error.status === 403 ?
                ' (the vtpivot_admin capability is needed to test the connection)' : '') });
        }).then(function () { busy(false); });
    }

    field('tier').on('change', applyTierPreset);
    field('backend').on('change', toggleRedis);
    $('#vtp-save').on('click', save);
    $('#vtp-test').on('click', test);

    busy(true);
    Promise.all([
        api.loadSettings().then(fillForm),
        refreshStatus(),
        api.appStatus().then(function (s) { banner(s.configured); }, function () { banner(false); })
    ]).then(function () {
        say('', '');
    }, function (error) {
        say('error', 'Cannot load the settings: ' + setupApi.messageOf(error));
    }).then(function () { busy(false); });
});
