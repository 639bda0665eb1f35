// require.js configuration of the fake splunkweb: the module names a Simple XML dashboard
// script can use, mapped to real libraries (jquery from npm) or to the minimal stubs here.
require.config({
    baseUrl: '/' + window.$C.LOCALE + '/static/js',
    paths: {
        'jquery': 'jquery',
        'splunk.util': '/' + window.$C.LOCALE + '/static/fakesplunkd/splunk.util',
        'splunkjs/mvc/simplexml/ready': '/' + window.$C.LOCALE + '/static/fakesplunkd/ready'
    },
    waitSeconds: 10
});
