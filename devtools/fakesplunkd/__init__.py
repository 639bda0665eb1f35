"""fakesplunkd: a small local stand-in for the splunkd REST API (and splunkweb's proxy) that
the vtpivot setup page and credential code talk to. Development only, stdlib only.

    from fakesplunkd import FakeSplunkd
    with FakeSplunkd(app_root="/path/to/etc/apps/vtpivot") as sd:
        sd.uri                      # http://127.0.0.1:<port>  (splunkd, as splunklib sees it)
        sd.web_url                  # http://127.0.0.1:<port>/en-US  (as the browser sees it)
        sd.requests                 # [{"method", "path", "user", "status", ...}, ...]

Answers as splunkd does for: storage/passwords (list/create/update/delete/acl, per-secret
read ACLs, app namespaces), configs/conf-vtpivot (+ properties/vtpivot for splunklib),
apps/local/vtpivot, vtpivot/test_connection (routed to bin/vtpivot_rest_handler.handle), and
/en-US/splunkd/__raw/... (splunkweb's proxy, with its session cookie and CSRF form key).
See server.py for what is modelled and what is simplified.
"""

from .server import DEFAULT_ROLES, DEFAULT_TOKENS, FakeSplunkd, decrypt, encrypt

__all__ = ["FakeSplunkd", "DEFAULT_ROLES", "DEFAULT_TOKENS", "encrypt", "decrypt"]
