"""Print each mood change of a moodcam: python mqtt_consumer.py [HOST] [PORT] [DEVICE_ID]"""

import json
import sys

import paho.mqtt.client as mqtt  # paho-mqtt 2.x

args = sys.argv[1:] + ["localhost", "1883", "moodcam"][len(sys.argv) - 1 :]  # the defaults
host, port, device = args[:3]
topic = f"moodcam/{device}/event"  # QoS 1, one message per mood change, fields as the mood log


def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
    event = json.loads(msg.payload)
    print(f"t={event['t']} mood={event['mood']} valence={event['valence']}", flush=True)


client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)  # again after each reconnect
client.on_subscribe = lambda *_: print(f"listening to {topic} on {host}:{port}", flush=True)
client.on_message = on_message
client.connect(host, int(port))
client.loop_forever()
