"""Print each mood change of a moodcam: python mqtt_consumer.py [HOST] [PORT] [DEVICE_ID]"""

import sys

import paho.mqtt.client as mqtt  # paho-mqtt 2.x

from moodcam.records import decode, parse_record  # the mood record's one reader (schema v1)

args = sys.argv[1:] + ["localhost", "1883", "moodcam"][len(sys.argv) - 1 :]  # the defaults
host, port, device = args[:3]
topic = f"moodcam/{device}/event"  # QoS 1, one message per mood change, fields as the mood log


def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
    rec = parse_record(msg.payload)
    event = decode(rec) if rec is not None else None
    if event is None:  # not JSON, or not a v1 mood record: say so, keep listening
        print(f"not a v1 mood record: {msg.payload[:80]!r}", file=sys.stderr, flush=True)
        return
    print(f"t={event.t} mood={event.mood} valence={event.valence}", flush=True)


client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)  # again after each reconnect
client.on_subscribe = lambda *_: print(f"listening to {topic} on {host}:{port}", flush=True)
client.on_message = on_message
client.connect(host, int(port))
client.loop_forever()
