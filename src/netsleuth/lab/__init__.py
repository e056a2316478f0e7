"""The lab: replay frames into two network namespaces on the running kernel and report,
frame by frame, what the kernel did with each (delivered, dropped where and why, consumed
by reassembly, forwarded, no effect) and which counters it moved.

sandbox.py  namespaces, veth, addresses, tunnel devices; removed on every exit path
frames.py   capture records -> Ethernet frames as a host owning their destination gets them
trace.py    one private tracefs instance: kfree_skb, consume_skb, netif_receive_skb
counters.py the receiving namespace's SNMP, netstat and link counters
verdict.py  events + counter deltas of one frame -> its verdict (pure)
replay.py   one frame at a time: send, collect, judge
"""
