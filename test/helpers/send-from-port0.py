# Sends one UDP datagram to 127.0.0.1:PORT with source port 0 (needs root: raw socket).
# The kernel refuses port 0 to ordinary sockets, but spoofed packets carry it.
import socket, struct, sys
port=int(sys.argv[1]); payload=bytes.fromhex(sys.argv[2])
s=socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
s.sendto(struct.pack('!HHHH', 0, port, 8+len(payload), 0)+payload, ('127.0.0.1', 0))
