// SPDX-License-Identifier: Apache-2.0
//
// Error codes shared by every Oxbow module, broker and client alike.
//
// Functions return int: >= 0 on success, a negative errno or a negative
// project code on failure. Project codes sit above the errno range (errno
// values stay below 4096), so `-OX_ECORRUPT` never collides with `-EIO`.
// ox_strerror() and ox_strerror_name() name every code of both kinds.
#ifndef OX_PROTO_ERROR_H
#define OX_PROTO_ERROR_H

enum ox_error {
	OX_EBASE = 5000,
	OX_ECORRUPT = 5001,   // bytes fail a checksum or a structural check
	OX_ETOOBIG = 5002,    // a size is over its limit
	OX_EOFFSET = 5003,    // an offset outside the log's range
	OX_EFAILED = 5004,    // log in its sticky failed state after an I/O error
	OX_ENOTLEADER = 5005, // this node does not lead the partition
	OX_ETRUNCATED = 5006, // the input ends inside a structure: more bytes needed
	OX_ECLOSED = 5007,    // the object is closing or closed
	OX_EMAX = 5008,
};

// Returns a sentence naming `err` (negative or positive); never NULL, the
// string is static.
const char *ox_strerror(int err);

// Returns the symbolic name of `err` ("OX_ECORRUPT", "EIO"); never NULL,
// static; "UNKNOWN" for codes nobody defined.
const char *ox_strerror_name(int err);

#endif
