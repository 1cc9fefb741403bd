/* /chat: the full-page chat. The socket goes through this service's proxy (same origin). */
(function () {
  'use strict';
  var el = document.getElementById('xinghe-chat');
  window.XingheWebchat.mount({
    element: el,
    embedded: true,
    socketUrl: window.location.protocol + '//' + window.location.host,
    socketPath: el.getAttribute('data-socket-path') || '/webchat/socket.io/'
  });
})();
