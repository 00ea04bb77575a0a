int raw_placeholder(void);
