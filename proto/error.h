// SPDX-License-Identifier: Apache-2.0
//
// Error codes shared by every Oxbow module, broker and client alike.
//
// Functions return int: >= 0 on success, a negative errno or a negative
// project code on failure. Project codes sit above the errno range (errno
// values stay below 4096), so `-OX_ECORRUPT` never collides with `-EIO`.
// ox_strerror() and ox_strerror_name() name every code of both kinds.
//
// The public client header (client/include/oxbow/oxbow.h) carries the same
// list, since an installed copy must stand alone. Both guard it with
// OX_ERROR_CODES_DEFINED, so whichever is included first defines the codes
// and the other skips them; tests/unit/client checks that the two lists
// name the same codes with the same values.
#ifndef OX_PROTO_ERROR_H
#define OX_PROTO_ERROR_H

#ifndef OX_ERROR_CODES_DEFINED
#define OX_ERROR_CODES_DEFINED
enum ox_error_code {
	OX_EBASE = 5000,
	OX_ECORRUPT = 5001,   // bytes fail a checksum or a structural check
	OX_ETOOBIG = 5002,    // a size is over its limit
	OX_EOFFSET = 5003,    // an offset outside the log's range
	OX_EFAILED = 5004,    // log in its sticky failed state after an I/O error
	OX_ENOTLEADER = 5005, // this node does not lead the partition
	OX_ETRUNCATED = 5006, // the input ends inside a structure: more bytes needed
	OX_ECLOSED = 5007,    // the object is closing or closed
	// Codes that travel as a protocol ErrorCode (proto/wire.h maps them).
	OX_ESERVER = 5008,          // UNKNOWN: a server error with no better code
	OX_EUNKNOWN_TOPIC = 5009,   // UNKNOWN_TOPIC
	OX_EINVALID_REQUEST = 5010, // INVALID_REQUEST
	OX_ESTORAGE = 5011,         // STORAGE_ERROR
	OX_EUNSUPPORTED = 5012,     // UNSUPPORTED_VERSION
	OX_ETOPIC_EXISTS = 5013,    // TOPIC_ALREADY_EXISTS
	OX_EREPLICAS = 5014,        // NOT_ENOUGH_REPLICAS
	OX_ESEQUENCE = 5015,        // OUT_OF_ORDER_SEQUENCE
	OX_EDUPLICATE = 5016,       // DUPLICATE_SEQUENCE
	OX_EINVALID_CONFIG = 5017,  // INVALID_CONFIG
	OX_EAUTH = 5018,            // AUTHENTICATION_FAILED
	OX_EDENIED = 5019,          // AUTHORIZATION_FAILED
	OX_EUNKNOWN_PROCESSOR = 5020, // UNKNOWN_PROCESSOR
	OX_EUNKNOWN_TABLE = 5021,   // UNKNOWN_TABLE
	OX_ENOT_CAUGHT_UP = 5022,   // NOT_CAUGHT_UP
	OX_ESHUTDOWN = 5023,        // SHUTTING_DOWN
	// Client-side codes.
	OX_EUNREACHABLE = 5024,     // no broker of the bootstrap list answered
	OX_ENOTFOUND = 5025,        // a key or name that does not exist
	OX_EMAX = 5026,
};
#endif

// Returns a sentence naming `err` (negative or positive); never NULL, the
// string is static.
const char *ox_strerror(int err);

// Returns the symbolic name of `err` ("OX_ECORRUPT", "EIO"); never NULL,
// static; "UNKNOWN" for codes nobody defined.
const char *ox_strerror_name(int err);

#endif
