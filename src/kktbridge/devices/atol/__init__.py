"""ATOL fiscal registers ("Протокол ККТ 3.1").

The wire codecs are sans-I/O and live in their own modules: `transport_v3` (0xFE framing, task buffer),
`transport_v2` (STX/ETX/DLE framing and the ENQ/ACK exchange machines), `bcd` (packed BCD numbers) and
`charset` (the device's "external" code page). Both the driver adapter and the emulator use them.
"""
