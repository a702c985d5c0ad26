/* omni-example-adapter: the smallest real adapter on the SDK. Each stdin line "TYPE:VALUE text"
 * becomes a chat message; the broker's verdict on each is printed. Copy it for a new channel. */
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include <omni/adapter.h>

static void on_ack(omni_adapter_t *ad, const omni_ack_t *a, void *user)
{
    (void)ad;
    (void)user;
    if (a->accepted)
        printf("#%llu stored: customer %s, conversation %s, seq %llu%s\n", (unsigned long long)a->request_id,
               a->customer_id, a->conversation_id, (unsigned long long)a->seq, a->duplicate ? " (duplicate)" : "");
    else
        printf("#%llu rejected: %s\n", (unsigned long long)a->request_id, a->detail);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc > 1 && argv[1][0] == '-') { /* --help, --version */
        printf("omni-example-adapter %s\nusage: omni-example-adapter [BROKER_ENDPOINT]\n"
               "Reads \"TYPE:VALUE text\" lines from stdin.\n", OMNI_VERSION);
        return strcmp(argv[1], "--help") && strcmp(argv[1], "--version") ? 2 : 0;
    }
    omni_adapter_opts_t o;
    omni_adapter_t *ad;
    omni_adapter_opts_init(&o);
    o.broker = argc > 1 ? argv[1] : "tcp://127.0.0.1:5560";
    o.adapter_id = "example-1";
    o.channel = OMNI__V1__CHANNEL__CHANNEL_CHAT;
    o.on_ack = on_ack;
    if (omni_adapter_new(&o, &ad) != 0) {
        fprintf(stderr, "omni-example-adapter: cannot use broker endpoint '%s'\n", o.broker);
        return 1;
    }
    struct pollfd fds[2] = {{.fd = 0, .events = POLLIN}, {.fd = omni_adapter_fd(ad), .events = POLLIN}};
    char line[4096];
    for (int open = 1; open;) {
        omni_adapter_process(ad); /* ZMQ_FD is edge-triggered: drain before every wait */
        if (poll(fds, 2, omni_adapter_timeout_ms(ad)) < 0 || !(fds[0].revents & (POLLIN | POLLHUP)))
            continue;
        if (!(open = fgets(line, sizeof(line), stdin) != NULL))
            break;
        line[strcspn(line, "\n")] = 0;
        char *text = strchr(line, ' ');
        if (text)
            *text++ = 0;
        Omni__V1__InboundMessage m = OMNI__V1__INBOUND_MESSAGE__INIT;
        m.from = line;
        m.text = text ? text : "";
        int rc = omni_adapter_send(ad, &m, NULL); /* provider_message_id is generated */
        if (rc != 0)
            fprintf(stderr, "not queued: %s\n", omni_strerror(rc));
    }
    int rc = omni_adapter_flush(ad, 5000); /* bounded wait for the last acks */
    omni_adapter_destroy(&ad);
    return rc == 0 ? 0 : 1;
}
