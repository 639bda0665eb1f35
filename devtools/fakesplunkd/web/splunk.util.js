// Stub of Splunk's splunk.util with the two functions the setup page uses, behaving as
// splunkweb's do: make_url prefixes the root path and locale; getFormKey reads the CSRF
// cookie splunkweb_csrf_token_<port>.
define([], function () {
    function getCookie(name) {
        var parts = document.cookie ? document.cookie.split(';') : [];
        for (var i = 0; i < parts.length; i++) {
            var kv = parts[i].replace(/^\s+/, '');
            if (kv.indexOf(name + '=') === 0) {
                return decodeURIComponent(kv.substring(name.length + 1));
            }
        }
        return null;
    }
    return {
        make_url: function (path) {
            var root = window.$C.MRSPARKLE_ROOT_PATH || '';
            return root + '/' + window.$C.LOCALE + (path.charAt(0) === '/' ? path : '/' + path);
        },
        getFormKey: function () {
            return getCookie('splunkweb_csrf_token_' + window.$C.MRSPARKLE_PORT_NUMBER);
        }
    };
});
