#ifndef VLTAVA_COORD_TEST_H
#define VLTAVA_COORD_TEST_H
void coord_add_pure_suite(void);
void coord_add_zk_suite(void);
void coord_add_rpc_suite(void);
void coord_add_reassign_suite(void);
void coord_add_election_suite(void);
void coord_add_shutdown_suite(void);
#endif
