// Stub of the splunkjs/mvc/simplexml/ready! loader plugin: resolves once the DOM (the
// dashboard's <html> panels) is there.
define([], function () {
    return {
        load: function (name, req, onload) {
            if (document.readyState === 'loading') {
                document.addEventListener('DOMContentLoaded', function () { onload(true); });
            } else {
                onload(true);
            }
        }
    };
});
