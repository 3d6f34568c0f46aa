#!/usr/bin/python3
"""A stand-in IP camera: gst-rtsp-server serving x264 + AAC at rtsp://127.0.0.1:PORT/cam with
user/password (basic/digest per gst-rtsp-server's auth). Run with Debian's /usr/bin/python3
(python3-gi, gir1.2-gst-rtsp-server-1.0). Usage: rtsp_camera.py PORT [USER PASSWORD]

The same port also takes RTSP tunnelled over HTTP (GET/POST with x-sessioncookie, GstRTSPClient).
Every DESCRIBE, PLAY and TEARDOWN the server handles is logged on stderr as `request <METHOD> tunnelled=<yes|no>`
(the connection's gst_rtsp_connection_is_tunneled()), so a test can tell how a client came in."""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

Gst.init(None)
port = sys.argv[1]
server = GstRtspServer.RTSPServer()
server.set_service(port)
server.set_address("127.0.0.1")
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(
    "( videotestsrc is-live=true pattern=ball ! video/x-raw,format=I420,width=640,height=360,framerate=30/1 "
    "! x264enc tune=zerolatency key-int-max=60 bitrate=1500 ! h264parse config-interval=-1 "
    "! rtph264pay name=pay0 pt=96 "
    "audiotestsrc is-live=true wave=sine ! audio/x-raw,rate=48000,channels=2 ! avenc_aac ! aacparse "
    "! rtpmp4gpay name=pay1 pt=97 )")
factory.set_shared(True)
if len(sys.argv) >= 4:
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string("media.factory.role", "camera-user")
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(sys.argv[2], sys.argv[3]), token)
    server.set_auth(auth)
    perms = GstRtspServer.RTSPPermissions()
    perms.add_role_from_structure(Gst.Structure.new_from_string(
        "camera-user, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"))
    factory.set_permissions(perms)
server.get_mount_points().add_factory("/cam", factory)


def log_request(method):
    def on_request(client, _ctx):
        tunnelled = "yes" if client.get_connection().is_tunneled() else "no"
        print(f"request {method} tunnelled={tunnelled}", file=sys.stderr, flush=True)
    return on_request


def on_client(_server, client):
    client.connect("describe-request", log_request("DESCRIBE"))
    client.connect("play-request", log_request("PLAY"))
    client.connect("teardown-request", log_request("TEARDOWN"))


server.connect("client-connected", on_client)
server.attach(None)
print("camera ready", flush=True)
GLib.MainLoop().run()
